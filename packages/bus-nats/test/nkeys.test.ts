import assert from 'node:assert/strict'
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto'
import { describe, test } from 'node:test'
import * as nkeys from '@nats-io/nkeys'
import { credsAuthenticator as natsCredsAuthenticator } from '@nats-io/transport-node'
import { decode as natsDecode, parseCreds as natsParseCreds } from '@nats-io/jwt'
import {
  createAccount,
  createOperator,
  createUser,
  credsAuthenticator,
  decodeJwt,
  fromSeed,
  parseCreds,
  reissueJwt,
} from '../src/nkeys.ts'
import { logAccountJwt, userCreds } from '../src/nats-config/claims.ts'

/** `bytes` and their CRC-16 (XMODEM, little endian) in base32, as nkeys writes a key: to make what nkeys would not. */
function nkeyText(bytes: number[]): string {
  let crc = 0
  for (const b of bytes) {
    crc ^= b << 8
    for (let i = 0; i < 8; i++) crc = (crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1) & 0xffff
  }
  const bits = [...bytes, crc & 0xff, crc >> 8].map((b) => b.toString(2).padStart(8, '0')).join('')
  const chunks = bits.padEnd(Math.ceil(bits.length / 5) * 5, '0').match(/.{5}/g)!
  return chunks.map((c) => 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'[Number.parseInt(c, 2)]).join('')
}

/** A JWT of `header` and `claims` signed by `key`: over `head.body` (v2, `ed25519-nkey`) or the body alone (v1). */
function signedJwt(header: object, claims: object, key: { sign(d: Uint8Array): Uint8Array }, v1 = false): string {
  const head = Buffer.from(JSON.stringify(header)).toString('base64url')
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url')
  const sig = Buffer.from(key.sign(Buffer.from(v1 ? body : `${head}.${body}`))).toString('base64url')
  return `${head}.${body}.${sig}`
}

// bus-nats' nkeys (node:crypto) against @nats-io/nkeys (tweetnacl), the reference: the same public key, seed and
// private key for every seed, the same signatures, and each verifies the other's.
describe('nkeys signed by node:crypto', () => {
  const pairs = (): [string, nkeys.KeyPair][] => [
    ...Array.from({ length: 10 }, (): [string, nkeys.KeyPair] => ['operator', nkeys.createOperator()]),
    ...Array.from({ length: 10 }, (): [string, nkeys.KeyPair] => ['account', nkeys.createAccount()]),
    ...Array.from({ length: 10 }, (): [string, nkeys.KeyPair] => ['user', nkeys.createUser()]),
  ]

  test('a seed made by @nats-io/nkeys gives the same public key, private key and signatures', () => {
    for (const [role, reference] of pairs()) {
      const ours = fromSeed(reference.getSeed())
      assert.equal(ours.getPublicKey(), reference.getPublicKey(), role)
      assert.deepEqual(ours.getSeed(), reference.getSeed(), role)
      assert.deepEqual(ours.getPrivateKey(), reference.getPrivateKey(), role)
      for (const length of [0, 1, 32, 1000]) {
        const data = randomBytes(length)
        assert.deepEqual(ours.sign(data), reference.sign(data), `${role}, ${length} bytes`)
        assert.ok(reference.verify(data, ours.sign(data)))
        assert.ok(ours.verify(data, reference.sign(data)))
        assert.equal(ours.verify(Buffer.concat([data, Buffer.of(1)]), ours.sign(data)), false)
      }
      // Neither seals nor opens: only curve keys do (mutation audit 2026-12-02, mutrand2: open returning
      // null, as for a message that does not decrypt, went unseen).
      assert.throws(() => reference.open(Buffer.of(1), reference.getPublicKey()), /only curve key/, role)
      assert.throws(() => ours.open(Buffer.of(1), reference.getPublicKey()), /does not open/, role)
      assert.throws(() => ours.seal(Buffer.of(1), reference.getPublicKey()), /does not seal/, role)
    }
  })

  test('a key made here is a valid nkey of its role for @nats-io/nkeys', () => {
    for (const [create, prefix] of [
      [createOperator, 'SO'],
      [createAccount, 'SA'],
      [createUser, 'SU'],
    ] as const) {
      const ours = create()
      assert.equal(new TextDecoder().decode(ours.getSeed()).slice(0, 2), prefix)
      const reference = nkeys.fromSeed(ours.getSeed())
      assert.equal(ours.getPublicKey(), reference.getPublicKey())
      assert.equal(ours.getPublicKey()[0], prefix[1])
      assert.ok(nkeys.fromPublic(ours.getPublicKey()).verify(Buffer.from('x'), ours.sign(Buffer.from('x'))))
    }
  })

  test('a seed with a wrong checksum, length or role is refused; a cleared pair signs nothing', () => {
    const seed = new TextDecoder().decode(nkeys.createUser().getSeed())
    const flipped = seed.slice(0, 10) + (seed[10] === 'A' ? 'B' : 'A') + seed.slice(11)
    for (const bad of [flipped, seed.slice(0, -1), 'SNAAAAAA', nkeys.createUser().getPublicKey(), 'not base32!'])
      assert.throws(() => fromSeed(new TextEncoder().encode(bad)), Error, bad)
    const cleared = fromSeed(new TextEncoder().encode(seed))
    cleared.clear()
    assert.throws(() => cleared.sign(Buffer.from('x')), /cleared/)
  })

  test("credsAuthenticator answers a nonce as nats.js's does: the JWT, the public key and the same signature", async () => {
    const creds = await userCreds('relay', createAccount(), { publish: { allow: ['a'] } })
    for (const nonce of ['', 'a-nonce-from-the-server']) {
      assert.deepEqual(credsAuthenticator(creds)(nonce), natsCredsAuthenticator(creds)(nonce))
      assert.deepEqual(credsAuthenticator(() => creds)(nonce), natsCredsAuthenticator(creds)(nonce))
    }
    assert.throws(() => credsAuthenticator(new TextEncoder().encode('no creds here'))('n'), /unable to parse/)
  })

  test("decodeJwt gives @nats-io/jwt's claims for a JWT whose issuer signed it, and refuses one it did not", async () => {
    const jwt = new TextDecoder().decode(await userCreds('relay', createAccount())).split('\n')[1]!
    assert.deepEqual(decodeJwt(jwt), natsDecode(jwt))
    const [head, body, sig] = jwt.split('.') as [string, string, string]
    const claims = JSON.parse(Buffer.from(body, 'base64url').toString())
    const forged = Buffer.from(JSON.stringify({ ...claims, name: 'admin' })).toString('base64url')
    const bytes = Buffer.from(sig, 'base64url')
    bytes[0]! ^= 1
    for (const bad of [`${head}.${forged}.${sig}`, `${head}.${body}.${bytes.toString('base64url')}`]) {
      assert.throws(() => natsDecode(bad), /sig verification failed/)
      assert.throws(() => decodeJwt(bad), /sig verification failed/)
    }
    const other = createAccount().getPublicKey()
    assert.throws(() =>
      decodeJwt(`${head}.${Buffer.from(JSON.stringify({ ...claims, iss: other })).toString('base64url')}.${sig}`),
    )
  })

  test("parseCreds reads a creds file as @nats-io/jwt's does, and refuses one without a JWT and a seed", async () => {
    const account = createAccount()
    const creds = await userCreds('relay', account)
    assert.deepEqual(parseCreds(creds), await natsParseCreds(creds))
    // Issued by a signing key: the account is the JWT's issuer_account, not its issuer.
    const signed = await userCreds('relay', account, {}, createAccount())
    assert.deepEqual(parseCreds(signed), await natsParseCreds(signed))
    assert.equal(parseCreds(signed).aid, account.getPublicKey())
    assert.throws(() => parseCreds(new TextEncoder().encode('no creds')), /bad credentials/)
  })

  test("reissueJwt: the same claims at another iat, a jti computed as @nats-io/jwt's, signed by the issuer only", async () => {
    const operator = createOperator()
    const jwt = await logAccountJwt(createAccount(), operator)
    const claims = decodeJwt(jwt)
    // At the same iat: exactly the JWT @nats-io/jwt encoded (its jti is the hash of the claims without it).
    assert.equal(reissueJwt(jwt, operator, claims.iat), jwt)
    const later = decodeJwt(reissueJwt(jwt, operator, claims.iat + 1))
    assert.equal(later.iat, claims.iat + 1)
    assert.notEqual(later.jti, claims.jti, 'a new jti')
    assert.deepEqual({ ...later, iat: 0, jti: '' }, { ...claims, iat: 0, jti: '' }, 'the same claims otherwise')
    assert.throws(() => reissueJwt(jwt, createOperator(), claims.iat + 1), /by its own issuer only/)
  })

  test('a seed of another kind, role, length or alphabet is refused, as a key of another role in a JWT', () => {
    const seed = new TextDecoder().decode(nkeys.createUser().getSeed())
    const user = [144 | (160 >> 5), (160 & 31) << 3] // a user seed's two bytes (seed kind 18 << 3, role 160)
    const key = Array.from(randomBytes(32))
    assert.ok(fromSeed(new TextEncoder().encode(nkeyText([...user, ...key]))), 'the crafted user seed is one')
    const refused = [
      nkeyText([user[0]! | 8, user[1]!, ...key]), // not the seed kind (the private key's is 15 << 3)
      nkeyText([...user, ...key, 0]),
      nkeyText([...user, ...key.slice(1)]),
      new TextDecoder().decode(nkeys.createServer().getSeed()),
      new TextDecoder().decode(nkeys.createCluster().getSeed()),
      new TextDecoder().decode(nkeys.createCurve().getSeed()),
      `${seed.slice(0, 10)}1${seed.slice(10)}`,
      seed.toLowerCase(),
    ]
    for (const bad of refused) assert.throws(() => fromSeed(new TextEncoder().encode(bad)), Error, bad)
    // A JWT signed by a server key, itself its issuer, verifies for @nats-io/jwt; not for an operator, account or user.
    const server = nkeys.createServer()
    assert.throws(() =>
      decodeJwt(signedJwt({ typ: 'JWT', alg: 'ed25519-nkey' }, { iss: server.getPublicKey() }, server)),
    )
    // An issuer one byte longer or shorter than a key (its checksum right), signed by the key it starts with.
    const account = fromSeed(new TextEncoder().encode(nkeyText([144, 0, ...key])))
    const der = createPrivateKey({
      key: Buffer.from(`302e020100300506032b657004220420${Buffer.from(key).toString('hex')}`, 'hex'),
      format: 'der',
      type: 'pkcs8',
    })
    const raw = [...createPublicKey(der).export({ format: 'der', type: 'spki' }).subarray(-32)]
    assert.equal(nkeyText([0, ...raw]), account.getPublicKey(), "the account's key, as crafted")
    for (const iss of [nkeyText([0, ...raw, 0]), nkeyText([0, ...raw.slice(0, 31)])]) {
      const jwt = signedJwt({ typ: 'JWT', alg: 'ed25519-nkey' }, { iss }, account)
      assert.throws(() => natsDecode(jwt), iss)
      assert.throws(() => decodeJwt(jwt), iss)
    }
  })

  test('every key made is new: two of one role never share a seed', () => {
    for (const create of [createOperator, createAccount, createUser]) {
      const seeds = new Set(Array.from({ length: 4 }, () => new TextDecoder().decode(create().getSeed())))
      assert.equal(seeds.size, 4)
    }
  })

  test("decodeJwt refuses a header or issuer @nats-io/jwt refuses, signed by the issuer's key; takes a v1 JWT", async () => {
    const account = createAccount()
    const jwt = new TextDecoder().decode(await userCreds('relay', account)).split('\n')[1]!
    const claims = decodeJwt<unknown>(jwt)
    const v2 = { typ: 'JWT', alg: 'ed25519-nkey' }
    assert.equal(signedJwt(v2, claims, account), jwt, 'the crafted JWT is the one issued')
    const iss = account.getPublicKey()
    const refused: [string, RegExp][] = [
      [signedJwt({ ...v2, typ: 'xyz' }, claims, account), /not a nats jwt - typ/],
      [signedJwt({ ...v2, alg: 'HS256' }, claims, account), /not a nats jwt - alg/],
      [`${jwt}.${jwt.split('.')[2]}`, /invalid jwt - 4 chunks/],
      // The issuer's own key with a checksum that is not its own.
      [signedJwt(v2, { ...claims, iss: iss.slice(0, -1) + (iss.endsWith('A') ? 'B' : 'A') }, account), /./],
      // A v2 header over a v1 signature (the body alone).
      [signedJwt(v2, claims, account, true), /sig verification failed/],
    ]
    for (const [bad, error] of refused) {
      assert.throws(() => natsDecode(bad), error)
      assert.throws(() => decodeJwt(bad), error)
    }
    const v1 = signedJwt({ typ: 'jwt', alg: 'ed25519' }, claims, account, true)
    assert.deepEqual(decodeJwt(v1), natsDecode(v1))
    assert.throws(() => decodeJwt(signedJwt({ typ: 'jwt', alg: 'ed25519' }, claims, account)), /sig verification/)
  })

  test("parseCreds refuses a creds file whose JWT its issuer did not sign, or whose JWT is another user's", async () => {
    const account = createAccount()
    const creds = new TextDecoder().decode(await userCreds('relay', account))
    const jwt = creds.split('\n')[1]!
    const claims = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString())
    const forged = signedJwt({ typ: 'JWT', alg: 'ed25519-nkey' }, { ...claims, name: 'admin' }, createAccount())
    assert.throws(() => parseCreds(new TextEncoder().encode(creds.replace(jwt, forged))), /sig verification failed/)
    const otherUser = new TextDecoder().decode(await userCreds('relay', account)).split('\n')[1]!
    assert.throws(() => parseCreds(new TextEncoder().encode(creds.replace(jwt, otherUser))), /not the seed's user's/)
    assert.equal(parseCreds(new TextEncoder().encode(creds)).jwt, jwt)
  })
})
