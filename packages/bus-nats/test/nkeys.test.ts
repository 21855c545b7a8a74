import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
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
})
