/**
 * Guards of the credential lifecycle the other tests did not reach (mutation audit mut5), against a real
 * nats-server and a real auth dir: a revocation list that is not one stops every change that merges into it; a
 * rotation at once revokes the keys an earlier staged rotation left valid; creds a signing-key rotation re-issues
 * keep their grants; a revoked tenant's signing key is not rotated; a push that fails keeps its code; keys offline
 * names a tenant whose signing seed is missing; a signing key made anew signs no creds before a push the server took.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { parseCreds } from '@nats-io/jwt'
import type { NatsConnection } from '@nats-io/transport-node'
import {
  LOG_ACCOUNT,
  SYSTEM_ACCOUNT,
  addTenant,
  bringIdentitySeedsOnline,
  initAuthDir,
  listAuthDirUsers,
  loadAuthDir,
  pushAccountJwt,
  moveIdentitySeedsOffline,
  revocationsFile,
  revokeStagedKeys,
  rotateServiceUser,
  revokeStagedSystemKeys,
  rotateOperatorSigningKey,
  rotateSigningKey,
  rotateSystemUser,
  rotateTenantUser,
  serviceCredsFile,
  signingPushedFile,
  signingSeedFile,
  tenantCredsFile,
} from '../src/nats-config/index.ts'
import { type TestNatsServer, connectsWith, dirSnapshot, refusedWith, startNatsServer } from '../src/testing/index.ts'
import { asTenantAdmin } from './support/auth-dir-ops.ts'

const keyOf = async (creds: Uint8Array) => (await parseCreds(creds)).uc.sub
/** What a creds file's JWT grants: publish, subscribe, responses. */
const grantsOf = async (creds: Uint8Array) => {
  const { pub, sub, resp } = (await parseCreds(creds)).uc.nats
  return { pub, sub, resp }
}

describe('credential lifecycle guards', () => {
  let server: TestNatsServer
  let dir: string
  let system: NatsConnection
  const read = (f: string) => readFileSync(f)
  const connectSystem = () => server.connect('system')
  before(async () => {
    server = await startNatsServer({ tenants: ['acme', 'globex'] })
    dir = server.authDir!
    system = await server.connect('system')
  })
  after(async () => {
    await system?.close()
    await server?.stop()
  })

  test('a revocation list that is not one stops a rotation and revoke-old before anything is written', async () => {
    const relay = serviceCredsFile(dir, 'relay')
    const revoked = read(relay)
    await rotateServiceUser(loadAuthDir(dir), system, 'relay')
    await refusedWith(server.url, revoked, 'the rotated relay key')
    const list = revocationsFile(dir, LOG_ACCOUNT)
    const good = readFileSync(list, 'utf8')
    writeFileSync(list, good.slice(0, good.length / 2))
    const before = dirSnapshot(dir)
    for (const change of [
      () => rotateServiceUser(loadAuthDir(dir), system, 'controller'),
      () => revokeStagedKeys(loadAuthDir(dir), system),
    ])
      await assert.rejects(
        change(),
        (e) => isEventplaneError(e, 'bus.config') && e.message.startsWith(`${list} is not a revocation list`),
      )
    assert.deepEqual(dirSnapshot(dir), before, 'nothing written')
    await refusedWith(server.url, revoked, 'the rotated relay key, still')
    writeFileSync(list, good)
    await rotateServiceUser(loadAuthDir(dir), system, 'controller')
    await refusedWith(server.url, revoked, 'the rotated relay key, after the next rotation')
  })

  test('a rotation at once revokes the key an earlier staged rotation left valid, too', async () => {
    const file = tenantCredsFile(dir, 'acme')
    const first = read(file)
    await asTenantAdmin(loadAuthDir(dir), server.url, (admin) =>
      rotateTenantUser(loadAuthDir(dir), admin, 'acme', { keepOld: true }),
    )
    const second = read(file)
    await connectsWith(server.url, first)
    const rotated = await asTenantAdmin(loadAuthDir(dir), server.url, (admin) =>
      rotateTenantUser(loadAuthDir(dir), admin, 'acme'),
    )
    assert.deepEqual(rotated.revoked, [await keyOf(second), await keyOf(first)])
    await refusedWith(server.url, second, "acme's replaced key")
    await refusedWith(server.url, first, "acme's key the staged rotation left valid")
    await connectsWith(server.url, read(file))
  })

  test("revoke-old for one service user revokes that user's staged key alone", async () => {
    const relayOld = read(serviceCredsFile(dir, 'relay'))
    const gatewayOld = read(serviceCredsFile(dir, 'gateway'))
    await rotateServiceUser(loadAuthDir(dir), undefined, 'relay', { keepOld: true })
    await rotateServiceUser(loadAuthDir(dir), undefined, 'gateway', { keepOld: true })
    // What `evtctl creds list` shows: each user's own staged keys and revoked count.
    const listed = async () =>
      Object.fromEntries((await listAuthDirUsers(loadAuthDir(dir))).map((u) => [u.user, [u.staged.length, u.revoked]]))
    const before = await listed()
    assert.equal(before.relay![0], 1)
    assert.equal(before.gateway![0], 1)
    assert.deepEqual(await revokeStagedKeys(loadAuthDir(dir), system, 'relay'), [await keyOf(relayOld)])
    await refusedWith(server.url, relayOld, "the relay's staged key")
    await connectsWith(server.url, gatewayOld)
    assert.deepEqual(await listed(), { ...before, relay: [0, before.relay![1]! + 1] })
    assert.deepEqual(await revokeStagedKeys(loadAuthDir(dir), system), [await keyOf(gatewayOld)])
    await refusedWith(server.url, gatewayOld, "the gateway's staged key")
    assert.deepEqual(await listed(), {
      ...before,
      relay: [0, before.relay![1]! + 1],
      gateway: [0, before.gateway![1]! + 1],
    })
  })

  test('a service user rotation or revoke-old of another name (the system user, a tenant) is bus.unknown_user, nothing written', async () => {
    const before = dirSnapshot(dir)
    for (const name of ['system', 'acme'])
      for (const change of [
        () => rotateServiceUser(loadAuthDir(dir), system, name),
        () => rotateServiceUser(loadAuthDir(dir), undefined, name, { keepOld: true }),
        () => revokeStagedKeys(loadAuthDir(dir), system, name),
      ])
        await assert.rejects(
          change(),
          (e) => isEventplaneError(e, 'bus.unknown_user') && e.message.startsWith(`${name} is not a service user`),
        )
    assert.deepEqual(dirSnapshot(dir), before, 'nothing written')
    await connectsWith(server.url, read(serviceCredsFile(dir, 'system')))
  })

  test('a JWT the server refuses is bus.bad_request (not a retry), saying so', async () => {
    const user = (await parseCreds(read(serviceCredsFile(dir, 'relay')))).jwt
    await assert.rejects(
      pushAccountJwt(system, user),
      (e) => isEventplaneError(e, 'bus.bad_request') && e.message.startsWith('nats-server refused the account JWT: '),
    )
  })

  test('creds a signing-key rotation re-issues keep their grants: the gateway still publishes nothing', async () => {
    const files = [...['relay', 'gateway', 'controller', 'operator'].map((u) => serviceCredsFile(dir, u as 'relay'))]
    const before = await Promise.all(files.map(async (f) => grantsOf(read(f))))
    await rotateSigningKey(loadAuthDir(dir), connectSystem, { account: 'log' })
    assert.deepEqual(await Promise.all(files.map(async (f) => grantsOf(read(f)))), before)
    const acme = tenantCredsFile(dir, 'acme')
    const acmeBefore = await grantsOf(read(acme))
    await rotateSigningKey(loadAuthDir(dir), connectSystem, { tenant: 'acme' })
    assert.deepEqual(await grantsOf(read(acme)), acmeBefore)
    const gateway = await server.connect('gateway')
    try {
      await assert.rejects(gateway.request('eventplane.anything', '', { timeout: 3000 }), (e) =>
        /Permissions Violation for Publish/.test(String((e as Error).cause ?? e)),
      )
    } finally {
      await gateway.close()
    }
  })

  test("a revoked tenant's signing key is not rotated: bus.unknown_tenant, nothing written", async () => {
    const globex = read(tenantCredsFile(dir, 'globex'))
    await server.revokeTenant('globex')
    const before = dirSnapshot(dir)
    await assert.rejects(rotateSigningKey(loadAuthDir(dir), connectSystem, { tenant: 'globex' }), (e) =>
      isEventplaneError(e, 'bus.unknown_tenant'),
    )
    assert.deepEqual(dirSnapshot(dir), before)
    await refusedWith(server.url, globex, 'the revoked tenant')
  })

  test('a signing-key rotation whose push fails keeps its code and says to run it again', async () => {
    const closed = async () => {
      const nc = await server.connect('system')
      await nc.close()
      return nc
    }
    await assert.rejects(
      rotateSigningKey(loadAuthDir(dir), closed, { account: 'system' }),
      (e) =>
        isEventplaneError(e, 'bus.unavailable') &&
        /^SYS: the new signing key is written, but the account JWT was not pushed: .*; run the rotation again$/.test(
          e.message,
        ),
    )
    const again = await rotateSigningKey(loadAuthDir(dir), connectSystem, { account: 'system' })
    for (const f of again.reissued) await connectsWith(server.url, read(f))
  })

  test('each system connection a rotation opens is closed before it returns', async () => {
    const opened: NatsConnection[] = []
    const tracked = async () => {
      const nc = await server.connect('system')
      opened.push(nc)
      return nc
    }
    await rotateSystemUser(loadAuthDir(dir), tracked)
    await rotateSystemUser(loadAuthDir(dir), undefined, { keepOld: true })
    await revokeStagedSystemKeys(loadAuthDir(dir), tracked)
    await rotateSigningKey(loadAuthDir(dir), tracked, { account: 'log' })
    const staged = await rotateOperatorSigningKey(loadAuthDir(dir), tracked)
    assert.equal(staged.step, 'staged')
    // Not restarted: the second step's first push is not applied, and its connection is closed all the same.
    await assert.rejects(rotateOperatorSigningKey(loadAuthDir(dir), tracked), (e) =>
      isEventplaneError(e, 'bus.jwt_not_applied'),
    )
    assert.ok(opened.length >= 5, `${opened.length} connections`)
    assert.deepEqual(
      opened.map((nc) => nc.isClosed()),
      opened.map(() => true),
    )
  })

  test("keys offline with a tenant's signing seed missing: bus.config naming the tenant and what pushes one, nothing moved", async () => {
    const seed = signingSeedFile(dir, { tenant: 'acme' })
    const kept = readFileSync(seed)
    rmSync(seed)
    const off = mkdtempSync(join(tmpdir(), 'ep-lifecycle-guards-'))
    try {
      const before = dirSnapshot(dir)
      await assert.rejects(
        moveIdentitySeedsOffline(loadAuthDir(dir), off),
        (e) =>
          isEventplaneError(e, 'bus.config') &&
          e.message.startsWith('the signing key of tenant acme is not known to the server yet') &&
          e.message.includes('evtctl tenant add acme'),
      )
      assert.deepEqual(dirSnapshot(dir), before, 'nothing moved')
      assert.deepEqual(readdirSync(off), [], 'nothing copied')
    } finally {
      writeFileSync(seed, kept, { mode: 0o600 })
      rmSync(off, { recursive: true, force: true })
    }
  })

  test('keys offline rewrites the same seed found at --to mode 0600; a seed copied back by hand is used, not taken for offline', async () => {
    // An operator rotation staged (the connections test above leaves one; run alone, this stages it): its next
    // step needs the operator's seed, and reaches its pushes once it is found.
    if (!existsSync(signingSeedFile(dir, { operator: true }, 'next')))
      assert.equal((await rotateOperatorSigningKey(loadAuthDir(dir), connectSystem)).step, 'staged')
    const off = mkdtempSync(join(tmpdir(), 'ep-lifecycle-guards-'))
    try {
      const operatorSeed = readFileSync(join(dir, 'operator.nk'))
      writeFileSync(join(off, 'operator.nk'), operatorSeed, { mode: 0o644 })
      const moved = await moveIdentitySeedsOffline(loadAuthDir(dir), off)
      assert.ok(moved.some((s) => s.seed === 'operator.nk'))
      assert.equal(statSync(join(off, 'operator.nk')).mode & 0o777, 0o600, 'the copy at --to: mode 0600')
      // Back by hand, not by keys online: the record still lists it, and the seed in its file is what signs. The
      // staged operator rotation reaches its pushes, which the server (not restarted) does not apply, instead of
      // bus.config saying operator.nk is offline.
      writeFileSync(join(dir, 'operator.nk'), operatorSeed, { mode: 0o600 })
      await assert.rejects(rotateOperatorSigningKey(loadAuthDir(dir), connectSystem), (e) =>
        isEventplaneError(e, 'bus.jwt_not_applied'),
      )
      await bringIdentitySeedsOnline(loadAuthDir(dir), off)
    } finally {
      rmSync(off, { recursive: true, force: true })
    }
  })

  test('a signing key the server does not know yet (made anew, its pushes failed) signs no creds: log, system, tenant', async () => {
    const gone = await server.connect('system')
    await gone.close()
    // Pushes fail (a closed system connection); the consumers are still checked (a live operator).
    const operator = await server.connect('operator')
    const dead = { system: gone, operator, close: async () => {} }
    // nats-setup makes a lost signing seed anew and does not push; a rotation at once whose push fails follows.
    rmSync(signingSeedFile(dir, { account: LOG_ACCOUNT }))
    rmSync(signingSeedFile(dir, { account: SYSTEM_ACCOUNT }))
    await initAuthDir(dir)
    await assert.rejects(rotateServiceUser(loadAuthDir(dir), gone, 'relay'), (e) =>
      isEventplaneError(e, 'bus.unavailable'),
    )
    await assert.rejects(
      rotateSystemUser(loadAuthDir(dir), async () => gone),
      (e) => isEventplaneError(e, 'bus.unavailable'),
    )
    // A tenant's made anew by a re-add whose push fails, then a rotation at once whose push fails.
    rmSync(signingSeedFile(dir, { tenant: 'acme' }))
    rmSync(signingPushedFile(dir, { tenant: 'acme' }))
    await assert.rejects(addTenant(loadAuthDir(dir), dead, 'acme'), (e) => isEventplaneError(e, 'bus.unavailable'))
    await assert.rejects(rotateTenantUser(loadAuthDir(dir), dead, 'acme'), (e) =>
      isEventplaneError(e, 'bus.unavailable'),
    )
    // Staged rotations push nothing: what they write must be signed by a key the server knows (the identity key).
    const relay = await rotateServiceUser(loadAuthDir(dir), undefined, 'relay', { keepOld: true })
    await connectsWith(server.url, read(relay.credsFile))
    const sys = await rotateSystemUser(loadAuthDir(dir), undefined, { keepOld: true })
    await connectsWith(server.url, read(sys.credsFile))
    const acme = await rotateTenantUser(loadAuthDir(dir), dead, 'acme', { keepOld: true })
    await connectsWith(server.url, read(acme.credsFile))
    await operator.close()
  })
})
