import { KeyObject, createHash, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto'
import type { Sql } from 'postgres'
import { EventplaneError, validateTenant } from '@eventplane/core'
import { typedPgErrors } from '../pg-errors.ts'
import { chainHeadsSql } from '../sql/chain-heads.ts'
import { chainTenantsSql } from '../sql/chain-tenants.ts'

/** The format tag of a heads file (and the first line of the message its signature covers). */
export const HEADS_FORMAT = 'eventplane.heads.v1'

export interface StreamHead {
  category: string
  stream_id: string
  version: number
  hash: Buffer
}

/**
 * One tenant's stream heads at a point of the global order: every stream's
 * last version and hash among the events at or before (tx_id,
 * global_position), and one digest over them.
 */
export interface ChainHeads {
  tenant: string
  tx_id: bigint
  global_position: bigint
  /** By category, then stream id (byte order). */
  streams: StreamHead[]
  /** SHA-256 over the lines `<category> <stream_id> <version> <hash hex>\n` in that order. */
  digest: Buffer
  signature?: { public_key: Buffer; value: Buffer }
}

/** The heads file, as JSON (`evtctl heads` writes it, `evtctl verify --against` reads it). */
export interface HeadsFile {
  format: typeof HEADS_FORMAT
  tenant: string
  tx_id: string
  global_position: string
  taken_at: string
  digest: string
  streams: { category: string; stream_id: string; version: number; hash: string }[]
  /** Ed25519 over {@link headsMessage}; the key as DER SubjectPublicKeyInfo, both base64. */
  signature?: { algorithm: 'ed25519'; public_key: string; value: string }
}

const byStream = (a: StreamHead, b: StreamHead) =>
  a.category < b.category
    ? -1
    : a.category > b.category
      ? 1
      : a.stream_id < b.stream_id
        ? -1
        : a.stream_id > b.stream_id
          ? 1
          : 0

/** The digest over stream heads (sorted here; names are ASCII, so string order is byte order). */
export function headsDigest(streams: readonly StreamHead[]): Buffer {
  const h = createHash('sha256')
  for (const s of [...streams].sort(byStream))
    h.update(`${s.category} ${s.stream_id} ${s.version} ${s.hash.toString('hex')}\n`)
  return h.digest()
}

/** What a heads signature covers: format, tenant, point and digest, one per line. */
export function headsMessage(h: Pick<ChainHeads, 'tenant' | 'tx_id' | 'global_position' | 'digest'>): Buffer {
  return Buffer.from(`${HEADS_FORMAT}\n${h.tenant}\n${h.tx_id}\n${h.global_position}\n${h.digest.toString('hex')}\n`)
}

/** The tenant's heads now, at its newest point the gap-safe read can return (no streams for an empty tenant). */
export async function readHeads(sql: Sql, tenant: string): Promise<ChainHeads> {
  const t = validateTenant(tenant)
  const rows = await typedPgErrors(() => chainHeadsSql(sql, t))
  const streams = rows
    .map((r) => ({ category: r.category, stream_id: r.stream_id, version: Number(r.stream_version), hash: r.hash }))
    .sort(byStream)
  return {
    tenant: t,
    tx_id: BigInt(rows[0]?.at_tx_id ?? 0),
    global_position: BigInt(rows[0]?.at_position ?? 0),
    streams,
    digest: headsDigest(streams),
  }
}

/** The tenants that have events (byte order), whose heads a publisher takes; the role must read across tenants. */
export function listChainTenants(sql: Sql): Promise<string[]> {
  return typedPgErrors(() => chainTenantsSql(sql))
}

/** Signs heads with an Ed25519 private key (PEM or DER PKCS#8, as `openssl genpkey -algorithm ed25519` writes). */
export function signHeads(heads: ChainHeads, privateKey: string | Buffer | KeyObject): ChainHeads {
  const key = privateKey instanceof KeyObject ? privateKey : createPrivateKey(privateKey)
  if (key.asymmetricKeyType !== 'ed25519') throw new TypeError('the signing key is not an Ed25519 private key')
  return {
    ...heads,
    signature: {
      public_key: createPublicKey(key).export({ type: 'spki', format: 'der' }),
      value: sign(null, headsMessage(heads), key),
    },
  }
}

/** A short fingerprint of a public key (SHA-256 of its DER, first 16 hex digits). */
export function keyFingerprint(publicKeyDer: Buffer): string {
  return createHash('sha256').update(publicKeyDer).digest('hex').slice(0, 16)
}

export function headsToFile(h: ChainHeads, takenAt: Date = new Date()): HeadsFile {
  return {
    format: HEADS_FORMAT,
    tenant: h.tenant,
    tx_id: h.tx_id.toString(),
    global_position: h.global_position.toString(),
    taken_at: takenAt.toISOString(),
    digest: h.digest.toString('hex'),
    streams: h.streams.map((s) => ({ ...s, hash: s.hash.toString('hex') })),
    ...(h.signature && {
      signature: {
        algorithm: 'ed25519' as const,
        public_key: h.signature.public_key.toString('base64'),
        value: h.signature.value.toString('base64'),
      },
    }),
  }
}

const HEX32 = /^[0-9a-f]{64}$/
const DECIMAL = /^(0|[1-9]\d{0,19})$/

function unusable(message: string): EventplaneError {
  return new EventplaneError('store.chain_unverifiable', message)
}

/**
 * A heads file checked before it is trusted: its shape, its digest over its
 * streams, and its signature when it has one (against `publicKey` when given,
 * which then must have signed it). Anything wrong is `store.chain_unverifiable`:
 * a check against it would prove nothing.
 */
export function checkHeads(file: unknown, publicKey?: string | Buffer): ChainHeads {
  const f = file as Partial<HeadsFile>
  if (typeof f !== 'object' || f === null || f.format !== HEADS_FORMAT)
    throw unusable(`the heads file is not ${HEADS_FORMAT}`)
  if (typeof f.tenant !== 'string' || typeof f.tx_id !== 'string' || !DECIMAL.test(f.tx_id))
    throw unusable('the heads file has no tenant or tx_id')
  if (typeof f.global_position !== 'string' || !DECIMAL.test(f.global_position) || !Array.isArray(f.streams))
    throw unusable('the heads file has no global_position or streams')
  const streams: StreamHead[] = f.streams.map((s, i) => {
    if (typeof s?.category !== 'string' || typeof s.stream_id !== 'string' || !Number.isSafeInteger(s.version))
      throw unusable(`stream ${i} of the heads file is malformed`)
    if (typeof s.hash !== 'string' || !HEX32.test(s.hash)) throw unusable(`stream ${i} of the heads file has no hash`)
    return { category: s.category, stream_id: s.stream_id, version: s.version, hash: Buffer.from(s.hash, 'hex') }
  })
  const heads: ChainHeads = {
    tenant: validateTenant(f.tenant),
    tx_id: BigInt(f.tx_id),
    global_position: BigInt(f.global_position),
    streams,
    digest: headsDigest(streams),
  }
  if (f.digest !== heads.digest.toString('hex')) throw unusable('the heads file’s digest does not match its streams')
  if (f.signature) {
    const keyDer = Buffer.from(f.signature.public_key ?? '', 'base64')
    let key: KeyObject
    try {
      key = createPublicKey({ key: keyDer, format: 'der', type: 'spki' })
    } catch {
      throw unusable('the heads file’s public key is not readable')
    }
    const value = Buffer.from(f.signature.value ?? '', 'base64')
    if (key.asymmetricKeyType !== 'ed25519' || !verify(null, headsMessage(heads), key, value))
      throw unusable('the heads file’s signature does not verify')
    heads.signature = { public_key: keyDer, value }
  }
  if (publicKey !== undefined) {
    const pinned = createPublicKey(publicKey).export({ type: 'spki', format: 'der' })
    if (!heads.signature || !pinned.equals(heads.signature.public_key))
      throw unusable('the heads file is not signed by the given public key')
  }
  return heads
}
