import { type KeyObject, createHash, createPrivateKey, createPublicKey, randomBytes, sign, verify } from 'node:crypto'
import type { ClaimsData, User } from '@nats-io/jwt'
import type { KeyPair } from '@nats-io/nkeys'
import type { Authenticator } from '@nats-io/transport-node'

/**
 * NATS nkeys (operator, account and user Ed25519 keys) whose signing and public keys come from node:crypto
 * (OpenSSL) instead of @nats-io/nkeys' tweetnacl, plain JavaScript that redoes a scalar multiplication for every
 * `sign` and every `getPublicKey`: about 25 ms of CPU each on a slow core, so an auth dir with two tenants cost
 * 1.5 s to make and every creds login ~75 ms. Same keys, same encoding (base32 with a role prefix and a CRC-16),
 * same signatures (Ed25519 is deterministic): test/nkeys.test.ts compares them with @nats-io/nkeys'.
 */

/** The roles eventplane makes keys for, by their nkeys prefix byte. */
const ROLES = { operator: 112, account: 0, user: 160 } as const
type Role = keyof typeof ROLES
/** Base32 encodes a seed's kind (18 << 3) and role into the two letters it starts with. */
const SEED_KIND = 144
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
/** A PKCS#8 Ed25519 private key is this prefix and the 32 bytes of its seed (RFC 8410). */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex')
/** An SPKI Ed25519 public key is this prefix and its 32 bytes (RFC 8410). */
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex')

function crc16(bytes: Uint8Array): number {
  let crc = 0
  for (const b of bytes) {
    crc ^= b << 8
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc
}

function base32(bytes: Uint8Array): string {
  let out = ''
  let bits = 0
  let value = 0
  for (const b of bytes) {
    value = (value << 8) | b
    bits += 8
    for (; bits >= 5; bits -= 5) out += ALPHABET[(value >>> (bits - 5)) & 31]
  }
  return bits > 0 ? out + ALPHABET[(value << (5 - bits)) & 31] : out
}

function unbase32(text: string): Uint8Array {
  const out: number[] = []
  let bits = 0
  let value = 0
  for (const c of text) {
    const v = ALPHABET.indexOf(c)
    if (v === -1) throw new Error('an nkey is base32')
    value = (value << 5) | v
    bits += 5
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255)
      bits -= 8
    }
  }
  return Uint8Array.from(out)
}

/** `head` and `payload` with their CRC-16 (little endian), base32. */
function encode(head: number[], payload: Uint8Array): string {
  const raw = new Uint8Array(head.length + payload.length + 2)
  raw.set(head)
  raw.set(payload, head.length)
  const crc = crc16(raw.subarray(0, raw.length - 2))
  raw[raw.length - 2] = crc & 0xff
  raw[raw.length - 1] = crc >> 8
  return base32(raw)
}

/** A seed's role prefix and its 32 raw bytes; throws on anything else, as nkeys' `fromSeed` does. */
function decodeSeed(seed: string): { prefix: number; raw: Uint8Array } {
  const raw = unbase32(seed)
  const body = raw.subarray(0, raw.length - 2)
  if (raw.length !== 36 || crc16(body) !== (raw[raw.length - 2]! | (raw[raw.length - 1]! << 8)))
    throw new Error('not an nkey seed (length or checksum)')
  if ((raw[0]! & 0xf8) !== SEED_KIND) throw new Error('not an nkey seed')
  const prefix = ((raw[0]! & 7) << 5) | (raw[1]! >> 3)
  if (!Object.values(ROLES).includes(prefix as never)) throw new Error('not an operator, account or user seed')
  return { prefix, raw: body.slice(2) }
}

/** The Ed25519 key of an operator, account or user public nkey (`O…`, `A…`, `U…`). */
function publicKeyObject(nkey: string): KeyObject {
  const raw = unbase32(nkey)
  const body = raw.subarray(0, raw.length - 2)
  if (raw.length !== 35 || crc16(body) !== (raw[raw.length - 2]! | (raw[raw.length - 1]! << 8)))
    throw new Error('not a public nkey (length or checksum)')
  if (!Object.values(ROLES).includes(body[0]! as never)) throw new Error('not an operator, account or user key')
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519, body.subarray(1)]), format: 'der', type: 'spki' })
}

class NativeKeyPair implements KeyPair {
  #seed: Uint8Array | undefined
  readonly #private: KeyObject
  readonly #public: KeyObject
  readonly #publicKey: string

  constructor(seed: string) {
    const { prefix, raw } = decodeSeed(seed)
    this.#seed = new TextEncoder().encode(seed)
    this.#private = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, raw]), format: 'der', type: 'pkcs8' })
    this.#public = createPublicKey(this.#private)
    const spki = this.#public.export({ format: 'der', type: 'spki' })
    this.#publicKey = encode([prefix], spki.subarray(spki.length - 32))
  }

  getPublicKey(): string {
    return this.#publicKey
  }

  getSeed(): Uint8Array {
    if (this.#seed === undefined) throw new Error('the key pair was cleared')
    return this.#seed
  }

  /** The 64-byte Ed25519 secret key (seed and public key) as nkeys encodes it. */
  getPrivateKey(): Uint8Array {
    const { raw } = decodeSeed(new TextDecoder().decode(this.getSeed()))
    const spki = this.#public.export({ format: 'der', type: 'spki' })
    return new TextEncoder().encode(encode([120], Buffer.concat([raw, spki.subarray(spki.length - 32)])))
  }

  sign(input: Uint8Array): Uint8Array {
    this.getSeed()
    return new Uint8Array(sign(null, input, this.#private))
  }

  verify(input: Uint8Array, sig: Uint8Array): boolean {
    return verify(null, input, this.#public, sig)
  }

  clear(): void {
    this.#seed?.fill(0)
    this.#seed = undefined
  }

  seal(): Uint8Array {
    throw new Error('an Ed25519 nkey does not seal (only curve keys do)')
  }

  open(): Uint8Array | null {
    throw new Error('an Ed25519 nkey does not open (only curve keys do)')
  }
}

/** The key pair of an operator, account or user seed (`SO…`, `SA…`, `SU…`), as nkeys' `fromSeed`. */
export function fromSeed(seed: Uint8Array): KeyPair {
  return new NativeKeyPair(new TextDecoder().decode(seed))
}

function create(role: Role): KeyPair {
  const prefix = ROLES[role]
  return new NativeKeyPair(encode([SEED_KIND | (prefix >> 5), (prefix & 31) << 3], randomBytes(32)))
}

export const createOperator = (): KeyPair => create('operator')
export const createAccount = (): KeyPair => create('account')
export const createUser = (): KeyPair => create('user')

const CREDS = /\s*(?:(?:-{3,}[^\n]*-{3,}\n)(.+)(?:\n\s*-{3,}[^\n]*-{3,}\n))/gi

/**
 * nats.js's `credsAuthenticator` with the nonce signed by {@link fromSeed}: the user JWT and seed of a creds file
 * (`creds`, or what it returns on each authentication), the seed's public key and its signature of the nonce.
 */
export function credsAuthenticator(creds: Uint8Array | (() => Uint8Array)): Authenticator {
  return (nonce?: string) => {
    const text = new TextDecoder().decode(typeof creds === 'function' ? creds() : creds)
    const [jwt, seed] = [...text.matchAll(CREDS)].map((m) => m[1]!.trim())
    if (jwt === undefined || seed === undefined) throw new Error('unable to parse credentials')
    const key = fromSeed(new TextEncoder().encode(seed))
    const sig = nonce ? Buffer.from(key.sign(new TextEncoder().encode(nonce))).toString('base64') : ''
    return { jwt, nkey: key.getPublicKey(), sig }
  }
}

/**
 * The claims of a NATS JWT once its signature by its issuer (`iss`) verifies, as @nats-io/jwt's `decode` (whose
 * verification is tweetnacl's); throws on a JWT that is not a NATS one or whose signature does not verify.
 */
export function decodeJwt<T = unknown>(jwt: string): ClaimsData<T> {
  const parts = jwt.split('.')
  if (parts.length !== 3) throw new Error(`invalid jwt - ${parts.length} chunks`)
  const [head, body, sig] = parts as [string, string, string]
  const header = JSON.parse(Buffer.from(head, 'base64url').toString('utf8')) as { typ?: string; alg?: string }
  if (header.typ !== 'jwt' && header.typ !== 'JWT') throw new Error(`not a nats jwt - typ ${header.typ}`)
  if (header.alg !== 'ed25519' && header.alg !== 'ed25519-nkey') throw new Error(`not a nats jwt - alg ${header.alg}`)
  const claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as ClaimsData<T>
  const signed = header.alg === 'ed25519-nkey' ? `${head}.${body}` : body
  if (!verify(null, Buffer.from(signed), publicKeyObject(claims.iss), Buffer.from(sig, 'base64url')))
    throw new Error('sig verification failed')
  return claims
}

/**
 * `jwt` (a v2 JWT `signer` issued, as @nats-io/jwt encodes them) with its `iat` set to `iat` seconds, a new `jti`
 * (SHA-512 of the claims without it, as @nats-io/jwt's) and signed again by `signer`.
 */
export function reissueJwt(jwt: string, signer: KeyPair, iat: number): string {
  const [head] = jwt.split('.')
  const { jti: _, ...claims } = decodeJwt(jwt)
  if (claims.iss !== signer.getPublicKey()) throw new Error('a JWT is re-issued by its own issuer only')
  const next = { ...claims, iat }
  const jti = createHash('sha512').update(JSON.stringify(next)).digest('base64')
  const body = Buffer.from(JSON.stringify({ ...next, jti })).toString('base64url')
  const sig = Buffer.from(signer.sign(Buffer.from(`${head}.${body}`))).toString('base64url')
  return `${head}.${body}.${sig}`
}

/**
 * @nats-io/jwt's `parseCreds` with the JWT checked by {@link decodeJwt} and its subject checked to be the seed's user
 * (which @nats-io/jwt does not: nats-server would refuse such a pair at login): the user JWT, its claims and seed.
 */
export function parseCreds(creds: Uint8Array): { jwt: string; key: string; uc: ClaimsData<User>; aid: string } {
  const [jwt, key] = [...new TextDecoder().decode(creds).matchAll(CREDS)].map((m) => m[1]!.trim())
  if (jwt === undefined || key === undefined) throw new Error('bad credentials')
  const uc = decodeJwt<User>(jwt)
  if (uc.sub !== fromSeed(new TextEncoder().encode(key)).getPublicKey())
    throw new Error("bad credentials: the JWT is not the seed's user's")
  return { jwt, key, uc, aid: uc.nats.issuer_account ?? uc.iss }
}
