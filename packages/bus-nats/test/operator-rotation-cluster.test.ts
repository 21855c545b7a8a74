/**
 * An operator signing-key rotation against a cluster of two nats-servers whose full resolvers compare their JWTs
 * every second (support/resolver-cluster.ts), each server restarted with the config re-generated from the auth dir
 * after each step, as an operator would. Server `b` is down during the second step (every tenant account JWT
 * re-signed by the new key and pushed), which runs on a clock 2 s behind the JWTs `b` stores; `b` comes back with
 * those (signed by the old key), and the resolvers merge, each keeping the JWT issued later (DirJWTStore.Merge →
 * saveIfNewer). The re-signed JWTs are issued after the last ones (`issuedAfterLast`, tenants.ts), so both servers
 * end on them: an active tenant connects on both, a rotated tenant's old creds and a revoked tenant's creds are
 * refused on both, and neither server keeps a JWT the old key signed.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, mock, test } from 'node:test'
import { decodeJwt } from '../src/nkeys.ts'
import {
  type TenantAdmin,
  revokeTenant,
  rotateOperatorSigningKey,
  rotateTenantUser,
  tenantCredsFile,
} from '../src/nats-config/index.ts'
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

const TENANTS = ['acme', 'globex', 'initech'] as const
type Tenant = (typeof TENANTS)[number]
const SERVERS: readonly ClusterServer[] = ['a', 'b']

describe('an operator signing-key rotation made while one server of a cluster is down', () => {
  let cluster: ResolverCluster
  let account: Map<Tenant, string>
  /** Creds refused from the first step on: globex's (revoked), initech's before its rotation. */
  const refused = new Map<Tenant, Uint8Array>()
  let newKey: string
  let oldKey: string

  before(async () => {
    cluster = await startResolverCluster()
    const auth = cluster.auth
    const asAdmin = <T>(fn: (admin: TenantAdmin) => Promise<T>): Promise<T> => asClusterAdmin(cluster, fn)
    account = await addClusterTenants(cluster, TENANTS)
    refused.set('globex', readFileSync(tenantCredsFile(auth.dir, 'globex')))
    refused.set('initech', readFileSync(tenantCredsFile(auth.dir, 'initech')))
    await asAdmin((admin) => revokeTenant(auth, admin, 'globex'))
    await asAdmin((admin) => rotateTenantUser(auth, admin, 'initech'))
    const stored = (s: ClusterServer, t: Tenant) => cluster.stored(s, account.get(t)!)
    const same = () => TENANTS.every((t) => stored('a', t) === stored('b', t))
    await eventually(same, "b storing each tenant's JWT")

    const connectSystem = () => connectAuthDirUser(auth, 'system', cluster.url('a'))
    const staged = await rotateOperatorSigningKey(auth, connectSystem)
    assert.equal(staged.step, 'staged')
    for (const s of SERVERS) await cluster.stop(s)
    for (const s of SERVERS) await cluster.start(s)

    // b is down during the second step, which runs on a clock 2 s behind the JWTs b stores.
    await cluster.stop('b')
    const earliest = Math.min(...TENANTS.map((t) => decodeJwt(stored('b', t)!.trim()).iat))
    const done = await pinnedTo(earliest - 2, () => rotateOperatorSigningKey(auth, connectSystem))
    assert.equal(done.step, 'done')
    newKey = done.key
    oldKey = done.old
    for (const t of TENANTS) assert.equal(decodeJwt(stored('b', t)!.trim()).iss, oldKey, `b keeps ${t}'s of before`)
    // Both restarted with the config of now (the new key alone trusted), b with the JWTs it stored before.
    await cluster.stop('a')
    for (const s of SERVERS) await cluster.start(s)
    await eventually(same, 'a and b storing the same JWT for each tenant')
  })
  after(async () => {
    mock.timers.reset()
    await cluster?.close()
  })

  test("both servers store each tenant's JWT the rotation issued last, signed by the new key", () => {
    for (const t of TENANTS) {
      const last = readFileSync(tenantJwtFile(cluster.auth.dir, t), 'utf8').trim()
      assert.equal(decodeJwt(last).iss, newKey, `${t}'s last JWT is signed by the new key`)
      for (const s of SERVERS) assert.equal(cluster.stored(s, account.get(t)!)?.trim(), last, `${s} stores ${t}'s`)
    }
  })

  test('an active tenant connects on both servers', async () => {
    for (const t of ['acme', 'initech'] as const)
      for (const s of SERVERS) await connectsWith(cluster.url(s), readFileSync(tenantCredsFile(cluster.auth.dir, t)))
  })

  test("a rotated tenant's old creds and a revoked tenant's creds stay refused on both servers", async () => {
    for (const [t, creds] of refused)
      for (const s of SERVERS) await refusedWith(cluster.url(s), creds, `${t}'s refused creds on ${s}`)
  })
})
