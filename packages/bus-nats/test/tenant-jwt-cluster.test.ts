/**
 * A tenant's account JWT pushed on a clock behind the one that issued the JWT before it, or within its second,
 * against a cluster of two nats-servers whose full resolvers compare their JWTs every second. Server `b` misses the
 * pushes: it is stopped after them and started again with the JWTs it stored before (what a server down during a
 * push comes back with). The resolvers then merge, each keeping the JWT issued later (nats-server DirJWTStore.Merge
 * → saveIfNewer, an equal `iat` taking the other's): a push issued at or before the JWT `b` kept was replaced by it
 * on `a` too, and the revoked creds connected again to both servers. Each test checks, once both servers store the
 * same JWT, that the old creds are refused on both. One server alone applies and stores whatever is pushed, also
 * across a restart, so only a cluster shows it (measured on nats-server 2.9.10). Two tenants lose their
 * `tenants/<t>.jwt` after their add (added before it existed, or the file lost): their JWT is issued after the one
 * the servers store, which they are asked for. A tenant's signing-key rotation (two pushes) is one more case; an
 * operator rotation, which restarts the servers, is in operator-rotation-cluster.test.ts. Last, both servers are
 * restarted holding different JWTs of one tenant's account and not comparing them: each answers the lookup with its
 * own, and the tenant's rotation is issued after the later one.
 */
import assert from 'node:assert/strict'
import { readFileSync, rmSync } from 'node:fs'
import { after, before, describe, mock, test } from 'node:test'
import { decodeJwt } from '../src/nkeys.ts'
import {
  type TenantAdmin,
  revokeStagedTenantKeys,
  revokeTenant,
  rotateSigningKey,
  rotateTenantUser,
  tenantCredsFile,
} from '../src/nats-config/index.ts'
import { issuedAfter } from '../src/nats-config/claims.ts'
import { claimsLookupSubject } from '../src/nats-config/claims-push.ts'
import { accountSigner } from '../src/nats-config/signing-keys.ts'
import { connectAuthDirUser } from '../src/nats-config/tenant-admin.ts'
import { tenantJwtFile } from '../src/nats-config/tenants.ts'
import { connectsWith, refusedWith } from '../src/testing/index.ts'
import { eventually } from './fixtures.ts'
import { pinnedTo } from './support/auth-dir-ops.ts'
import {
  type ClusterServer,
  type ResolverCluster,
  addClusterTenants,
  asClusterAdmin,
  startResolverCluster,
} from './support/resolver-cluster.ts'

const TENANTS = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'wonka', 'soylent'] as const
/** Tenants whose `tenants/<t>.jwt` is gone (added before it existed, or lost): the servers' JWT is the last. */
const WITHOUT_LAST_JWT: readonly Tenant[] = ['hooli', 'wonka']
type Tenant = (typeof TENANTS)[number]

describe("a tenant's account JWT pushed on a clock behind the last one stays applied once a server that missed it is back", () => {
  let cluster: ResolverCluster
  let account: Map<Tenant, string>
  /** The account of a tenant added with them, for the last test (its servers are restarted there). */
  let dunder: string
  /** Each tenant's creds before its operation (what its operation refuses). */
  const old = new Map<Tenant, Uint8Array>()

  before(async () => {
    cluster = await startResolverCluster()
    const auth = cluster.auth
    const asAdmin = <T>(fn: (admin: TenantAdmin) => Promise<T>): Promise<T> => asClusterAdmin(cluster, fn)
    account = await addClusterTenants(cluster, TENANTS)
    // Added here: after b's restart below, JetStream may not answer yet (its meta group elects a leader again).
    dunder = (await addClusterTenants(cluster, ['dunder'])).get('dunder')!
    for (const t of TENANTS) old.set(t, readFileSync(tenantCredsFile(auth.dir, t)))
    const stored = (s: ClusterServer, t: Tenant) => cluster.stored(s, account.get(t)!)
    await eventually(() => TENANTS.every((t) => stored('b', t) === stored('a', t)), "b storing each tenant's JWT")
    const kept = new Map(TENANTS.map((t) => [t, stored('b', t)!]))
    for (const t of WITHOUT_LAST_JWT) rmSync(tenantJwtFile(auth.dir, t))
    const iat = (t: Tenant) => decodeJwt(kept.get(t)!.trim()).iat

    await asAdmin((admin) => pinnedTo(iat('acme') - 2, () => rotateTenantUser(auth, admin, 'acme')))
    await asAdmin((admin) => rotateTenantUser(auth, admin, 'globex', { keepOld: true }))
    await asAdmin((admin) => pinnedTo(iat('globex') - 2, () => revokeStagedTenantKeys(auth, admin, 'globex')))
    await asAdmin((admin) => pinnedTo(iat('initech') - 2, () => revokeTenant(auth, admin, 'initech')))
    // Two pushes within the second of the JWT b keeps: the rotation's, then revoke-old's.
    await asAdmin((admin) => pinnedTo(iat('umbrella'), () => rotateTenantUser(auth, admin, 'umbrella')))
    await asAdmin((admin) => pinnedTo(iat('umbrella'), () => revokeStagedTenantKeys(auth, admin, 'umbrella')))
    // The servers' JWT of hooli and wonka is later than the clock, and the auth dir does not hold it.
    await asAdmin((admin) => pinnedTo(iat('hooli') - 2, () => rotateTenantUser(auth, admin, 'hooli')))
    await asAdmin((admin) => pinnedTo(iat('wonka') - 2, () => revokeTenant(auth, admin, 'wonka')))
    // Two pushes: both signing keys listed, then the new one alone; the old key's creds refused.
    const connectSystem = () => connectAuthDirUser(auth, 'system', cluster.url('a'))
    await pinnedTo(iat('soylent') - 2, () => rotateSigningKey(auth, connectSystem, { tenant: 'soylent' }))
    for (const t of TENANTS) await refusedWith(cluster.url('a'), old.get(t)!, `${t}'s old creds, once pushed`)

    await cluster.stop('b')
    for (const t of TENANTS) cluster.store('b', account.get(t)!, kept.get(t)!)
    await cluster.start('b')
    await eventually(
      () => TENANTS.every((t) => stored('a', t) === stored('b', t)),
      'a and b storing the same JWT for each tenant',
    )
  })
  after(async () => {
    mock.timers.reset()
    await cluster?.close()
  })

  /** The old creds refused by both servers, which store the JWT the auth dir issued last for the tenant. */
  const refusedOnBoth = async (t: Tenant) => {
    for (const s of ['a', 'b'] as const) await refusedWith(cluster.url(s), old.get(t)!, `${t}'s old creds on ${s}`)
    const last = readFileSync(tenantJwtFile(cluster.auth.dir, t), 'utf8').trim()
    for (const s of ['a', 'b'] as const)
      assert.equal(cluster.stored(s, account.get(t)!)?.trim(), last, `${s} stores it`)
  }
  const newConnectOnBoth = async (t: Tenant) => {
    const creds = readFileSync(tenantCredsFile(cluster.auth.dir, t))
    for (const s of ['a', 'b'] as const) await connectsWith(cluster.url(s), creds)
  }

  test('a rotation at once on a clock 2 s behind: the old creds are refused on both servers', async () => {
    await refusedOnBoth('acme')
    await newConnectOnBoth('acme')
  })

  test('revoke-old on a clock 2 s behind: the staged key is refused on both servers', async () => {
    await refusedOnBoth('globex')
    await newConnectOnBoth('globex')
  })

  test("tenant revoke on a clock 2 s behind: the tombstone holds on both servers, the tenant's creds are refused", async () => {
    await refusedOnBoth('initech')
  })

  test('a rotation and revoke-old within the second of the JWT before: the old creds are refused on both servers', async () => {
    await refusedOnBoth('umbrella')
    await newConnectOnBoth('umbrella')
  })

  test("a rotation at once of a tenant without tenants/<t>.jwt on a clock 2 s behind the servers' JWT: refused on both", async () => {
    await refusedOnBoth('hooli')
    await newConnectOnBoth('hooli')
  })

  test("tenant revoke of a tenant without tenants/<t>.jwt on a clock 2 s behind the servers' JWT: the tombstone holds", async () => {
    await refusedOnBoth('wonka')
  })

  test("a tenant's signing-key rotation on a clock 2 s behind: the old key's creds are refused on both servers", async () => {
    await refusedOnBoth('soylent')
    await newConnectOnBoth('soylent')
  })

  // Last: it leaves both servers comparing their resolvers once an hour.
  test("two servers hold different JWTs of a tenant without tenants/<t>.jwt: its rotation's JWT is issued after the later one", async () => {
    const auth = cluster.auth
    const added = readFileSync(tenantJwtFile(auth.dir, 'dunder'), 'utf8').trim()
    const iat = decodeJwt(added).iat
    const earlier = issuedAfter(added, iat + 9, accountSigner(auth))
    const later = issuedAfter(added, iat + 19, accountSigner(auth))
    // a, which the tenant admin asks through (its answer comes first), holds the earlier. Neither compares its resolver
    // with the other's before the rotation: each answers with the JWT its directory holds.
    await Promise.all((['a', 'b'] as const).map((s) => cluster.stop(s)))
    cluster.store('a', dunder, earlier)
    cluster.store('b', dunder, later)
    await Promise.all((['a', 'b'] as const).map((s) => cluster.start(s, { resolverSyncSeconds: 3600 })))
    rmSync(tenantJwtFile(auth.dir, 'dunder'))
    const system = await connectAuthDirUser(auth, 'system', cluster.url('a'))
    try {
      const held = async () => {
        const answers: string[] = []
        const lookup = claimsLookupSubject(dunder)
        for await (const m of await system.requestMany(lookup, '', { strategy: 'count', maxMessages: 2, maxWait: 500 }))
          answers.push(m.string().trim())
        return answers
      }
      await eventually(async () => (await held()).length === 2, 'a and b answering the lookup (routed)')
      assert.deepEqual((await held()).sort(), [earlier, later].sort(), 'each holds its own')
    } finally {
      await system.close()
    }
    const old = readFileSync(tenantCredsFile(auth.dir, 'dunder'))

    await asClusterAdmin(cluster, (admin) => pinnedTo(iat - 2, () => rotateTenantUser(auth, admin, 'dunder')))
    const pushed = readFileSync(tenantJwtFile(auth.dir, 'dunder'), 'utf8').trim()
    assert.equal(decodeJwt(pushed).iat, iat + 21, 'one second after the later of the two')
    await eventually(
      () => (['a', 'b'] as const).every((s) => cluster.stored(s, dunder)?.trim() === pushed),
      'a and b storing it',
    )
    for (const s of ['a', 'b'] as const) await refusedWith(cluster.url(s), old, `dunder's old creds on ${s}`)
  })
})
