/**
 * A tenant's account JWT when the auth dir does not hold the last one it issued (no `tenants/<t>.jwt`: a tenant
 * added before that file existed, or the file lost), and a revoked tenant's tombstone against user creds issued on a
 * clock ahead of the one that revokes it, against one real nats-server (operator mode, full resolver). The clock is
 * pinned (`mock.timers`, Date only). Which operations ask the servers (their lookups, seen on the wire): none a new
 * account's add, one an add cut short or a rotation without that file. The cluster cases (a server that missed the
 * push comes back, two servers holding different JWTs) are in tenant-jwt-cluster.test.ts.
 */
import assert from 'node:assert/strict'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, mock, test } from 'node:test'
import { encodeAccount, encodeUser, fmtCreds } from '@nats-io/jwt'
import { createAccount, createUser, fromSeed } from '@nats-io/nkeys'
import type { NatsConnection } from '@nats-io/transport-node'
import { decodeJwt } from '../src/nkeys.ts'
import { issuedAfter } from '../src/nats-config/claims.ts'
import {
  type AuthDir,
  addTenant,
  loadAuthDir,
  pushAccountJwt,
  revokeTenant,
  rotateTenantUser,
  signingSeedFile,
  tenantCredsFile,
} from '../src/nats-config/index.ts'
import { heldIssuedAt } from '../src/nats-config/claims-push.ts'
import { jwtRevocations, jwtSigningKeys } from '../src/nats-config/revocations.ts'
import { accountSigner } from '../src/nats-config/signing-keys.ts'
import { activeRecord, listTenants, tenantJwtFile, tombstoneAccountJwt } from '../src/nats-config/tenants.ts'
import { type TestNatsServer, connectsWith, refusedWith, startNatsServer } from '../src/testing/index.ts'
import { asTenantAdmin, pinnedTo } from './support/auth-dir-ops.ts'
import { watchClaimsLookups } from './support/claims-lookups.ts'

const SHORT_WAIT = { firstMs: 300, moreMs: 100 }
const iatOf = (jwt: string) => decodeJwt(jwt.trim()).iat
const seedOf = (file: string) => fromSeed(new TextEncoder().encode(readFileSync(file, 'utf8').trim()))

describe("a tenant's account JWT without the auth dir's last one, and a tombstone against creds issued ahead", () => {
  let server: TestNatsServer
  let auth: AuthDir
  let system: NatsConnection
  /** The account JWT the server's resolver stores for `tenant`'s account. */
  const stored = (tenant: string) => {
    const account = listTenants(auth).find((r) => r.tenant === tenant)!.account
    return readFileSync(join(server.authDir!, '..', 'accounts', `${account}.jwt`), 'utf8').trim()
  }
  const asAdmin = <T>(fn: Parameters<typeof asTenantAdmin<T>>[2]) => asTenantAdmin(auth, server.url, fn)

  before(async () => {
    server = await startNatsServer()
    auth = loadAuthDir(server.authDir!)
    system = await server.connect('system')
  })
  after(async () => {
    mock.timers.reset()
    await system?.close()
    await server?.stop()
  })

  test("the servers' JWT of an account is looked up: its iat; an account no server knows: none", async () => {
    await asAdmin((admin) => addTenant(auth, admin, 'acme'))
    const account = activeRecord(auth, 'acme')!.account
    assert.equal(await heldIssuedAt(system, account, SHORT_WAIT), iatOf(stored('acme')))
    assert.equal(await heldIssuedAt(system, createAccount().getPublicKey(), SHORT_WAIT), undefined)
  })

  test("without tenants/<t>.jwt, a rotation on a clock behind issues its JWT one second after the server's", async () => {
    await asAdmin((admin) => addTenant(auth, admin, 'globex'))
    const old = readFileSync(tenantCredsFile(auth.dir, 'globex'))
    const held = iatOf(stored('globex'))
    rmSync(tenantJwtFile(auth.dir, 'globex'))
    await asAdmin((admin) => pinnedTo(held - 100, () => rotateTenantUser(auth, admin, 'globex')))
    const pushed = stored('globex')
    assert.equal(iatOf(pushed), held + 1, 'issued one second after the JWT the server held')
    assert.equal(readFileSync(tenantJwtFile(auth.dir, 'globex'), 'utf8').trim(), pushed, 'kept as the last')
    await refusedWith(server.url, old, "globex's old creds")
    await connectsWith(server.url, readFileSync(tenantCredsFile(auth.dir, 'globex')))
  })

  test("a tombstone revokes the tenant's users issued on a clock ahead: refused even with connections allowed", async () => {
    const ahead = Math.floor(Date.now() / 1000) + 100
    await asAdmin((admin) => pinnedTo(ahead, () => addTenant(auth, admin, 'initech')))
    const creds = readFileSync(tenantCredsFile(auth.dir, 'initech'))
    await connectsWith(server.url, creds)
    const record = activeRecord(auth, 'initech')!
    // What the auth dir removes at the revoke: the account's signing seed (its key listed in the JWT).
    const signing = seedOf(signingSeedFile(auth.dir, { tenant: 'initech' }))
    const signingKeys = jwtSigningKeys(stored('initech'))

    await asAdmin((admin) => revokeTenant(auth, admin, 'initech'))
    const tombstone = stored('initech')
    const all = jwtRevocations(tombstone)['*']
    assert.ok(all !== undefined && all >= ahead, `'*' (${all}) covers the creds issued at ${ahead}`)

    // The tombstone as it is, but allowing connections and listing the signing key of the creds: only its
    // revocations refuse them. A user of the same signing key issued after '*' connects (the JWT is applied).
    const operator = accountSigner(auth)
    const open = await encodeAccount(
      'initech',
      record.account,
      {
        limits: { subs: -1, data: -1, payload: -1, imports: -1, exports: 0, wildcards: false, leaf: 0, conn: -1 },
        revocations: jwtRevocations(tombstone),
        signing_keys: signingKeys,
      },
      { signer: operator },
    )
    await pushAccountJwt(system, issuedAfter(open, iatOf(tombstone), operator))
    const later = createUser()
    const laterJwt = await pinnedTo(all! + 1, () =>
      encodeUser('initech', later, record.account, {}, { signer: signing }),
    )
    await connectsWith(server.url, fmtCreds(laterJwt, later))
    await refusedWith(server.url, creds, "initech's creds issued ahead")
  })

  test("an operator rotation's re-signed tombstone on a clock behind keeps the '*' of the one before", async () => {
    const before = readFileSync(tenantJwtFile(auth.dir, 'initech'), 'utf8')
    const revoked = listTenants(auth).find((r) => r.tenant === 'initech')!
    assert.equal(existsSync(tenantCredsFile(auth.dir, 'initech')), false, 'the creds file is gone')
    const all = jwtRevocations(before)['*']!
    const resigned = await pinnedTo(all - 200, () => tombstoneAccountJwt(auth, revoked, system))
    assert.ok(jwtRevocations(resigned)['*']! >= all, `'*' ${jwtRevocations(resigned)['*']} >= ${all}`)
  })

  test('tenant add of a new account asks the servers nothing; an add cut short, and a rotation without tenants/<t>.jwt, ask once', async () => {
    const lookups = await watchClaimsLookups(auth, server.url)
    try {
      await asAdmin((admin) => addTenant(auth, admin, 'hooli'))
      const account = activeRecord(auth, 'hooli')!.account
      assert.equal(await lookups.of(account), 0, 'a key made now: no server can hold a JWT of its account')

      // What an add cut short after its push by a release before tenants/<t>.jwt leaves: the account's keys, its
      // JWT on the server, no record (written last), no creds, no tenants/<t>.jwt. The add again keeps the key.
      const held = iatOf(stored('hooli'))
      for (const f of ['json', 'creds', 'jwt']) rmSync(join(auth.dir, 'tenants', `hooli.${f}`))
      await asAdmin((admin) => pinnedTo(held - 100, () => addTenant(auth, admin, 'hooli')))
      assert.equal(activeRecord(auth, 'hooli')!.account, account, 'the key the add cut short made')
      assert.equal(await lookups.of(account), 1, 'the add again asks the servers')
      assert.equal(iatOf(stored('hooli')), held + 1, "issued one second after the server's")

      rmSync(tenantJwtFile(auth.dir, 'hooli'))
      await asAdmin((admin) => rotateTenantUser(auth, admin, 'hooli'))
      assert.equal(await lookups.of(account), 2, 'a rotation without tenants/<t>.jwt asks')
      await asAdmin((admin) => rotateTenantUser(auth, admin, 'hooli'))
      assert.equal(await lookups.of(account), 2, 'a rotation with it asks nothing')
    } finally {
      await lookups.close()
    }
  })
})
