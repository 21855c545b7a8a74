/**
 * A revocation made on a clock behind the one that issued the creds it revokes (a host whose clock is behind, another
 * host, a clock set back): nats-server refuses a user JWT only when the revocation's time is at or after its `iat`,
 * so a revocation as of that clock's now let the "revoked" creds in. Each test pins the clock (`mock.timers`, Date
 * only) two seconds before the old creds' `iat`, rotates or revokes, and checks what a user sees against a real
 * nats-server: the old creds are refused, the new ones connect. A staged key in a list written before its `iat` was
 * recorded is still revoked (as of now).
 */
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { after, before, describe, mock, test } from 'node:test'
import { parseCreds } from '@nats-io/jwt'
import type { NatsConnection } from '@nats-io/transport-node'
import {
  LOG_ACCOUNT,
  SYSTEM_ACCOUNT,
  type TenantAdmin,
  loadAuthDir,
  readRevocations,
  revocationsFile,
  revokeStagedKeys,
  revokeStagedTenantKeys,
  rotateServiceUser,
  rotateSystemUser,
  rotateTenantUser,
  serviceCredsFile,
  tenantCredsFile,
} from '../src/nats-config/index.ts'
import { type TestNatsServer, connectsWith, refusedWith, startNatsServer } from '../src/testing/index.ts'
import { asTenantAdmin, twoSecondsBefore } from './support/auth-dir-ops.ts'

const issued = async (creds: Uint8Array) => (await parseCreds(creds)).uc

describe('a revocation covers the iat of the creds it revokes, also made on a clock behind their issue', () => {
  let server: TestNatsServer
  let system: NatsConnection
  before(async () => {
    server = await startNatsServer()
    system = await server.connect('system')
    await server.addTenant('acme')
    await server.addTenant('globex')
  })
  after(async () => {
    mock.timers.reset()
    await server?.stop()
  })

  /** Runs `fn` with a tenant admin connected with the system and operator creds files as they are now. */
  const asAdmin = <T>(fn: (admin: TenantAdmin) => Promise<T>): Promise<T> =>
    asTenantAdmin(loadAuthDir(server.authDir!), server.url, fn)

  test('a service user rotated at once', async () => {
    const auth = loadAuthDir(server.authDir!)
    const file = serviceCredsFile(auth.dir, 'relay')
    const old = readFileSync(file)
    const { sub, iat } = await issued(old)
    await twoSecondsBefore(iat, () => rotateServiceUser(auth, system, 'relay'))
    await refusedWith(server.url, old, 'the old relay creds')
    assert.ok(readRevocations(auth.dir, LOG_ACCOUNT).revoked[sub]!.at >= iat, 'the revocation covers its iat')
    await connectsWith(server.url, readFileSync(file))
  })

  test('a service user rotated staged, its old key revoked by revokeStagedKeys', async () => {
    const auth = loadAuthDir(server.authDir!)
    const file = serviceCredsFile(auth.dir, 'gateway')
    const old = readFileSync(file)
    const { sub, iat } = await issued(old)
    const rotated = await rotateServiceUser(auth, undefined, 'gateway', { keepOld: true })
    assert.deepEqual(rotated.staged, [sub])
    await connectsWith(server.url, old)
    assert.deepEqual(await twoSecondsBefore(iat, () => revokeStagedKeys(auth, system, 'gateway')), [sub])
    await refusedWith(server.url, old, 'the old gateway creds')
    await connectsWith(server.url, readFileSync(file))
  })

  test('a service user revoked by the test server helper (revokeLogUserKeys given the iat of the creds it read)', async () => {
    const old = readFileSync(serviceCredsFile(server.authDir!, 'controller'))
    await twoSecondsBefore((await issued(old)).iat, () => server.revokeServiceUsers(['controller']))
    await refusedWith(server.url, old, 'the controller creds')
  })

  test('a key staged in a list written before `issued` was recorded is revoked as of now', async () => {
    const auth = loadAuthDir(server.authDir!)
    const file = serviceCredsFile(auth.dir, 'operator')
    const old = readFileSync(file)
    const { sub } = await issued(old)
    await rotateServiceUser(auth, undefined, 'operator', { keepOld: true })
    const list = readRevocations(auth.dir, LOG_ACCOUNT)
    const { issued: _issued, ...before } = list.staged[sub]!
    writeFileSync(revocationsFile(auth.dir, LOG_ACCOUNT), JSON.stringify({ ...list, staged: { [sub]: before } }))
    assert.deepEqual(await revokeStagedKeys(auth, system, 'operator'), [sub])
    await refusedWith(server.url, old, 'the old operator creds')
    await connectsWith(server.url, readFileSync(file))
  })

  test('a tenant rotated at once', async () => {
    const auth = loadAuthDir(server.authDir!)
    const file = tenantCredsFile(auth.dir, 'acme')
    const old = readFileSync(file)
    const { iat } = await issued(old)
    await asAdmin((admin) => twoSecondsBefore(iat, () => rotateTenantUser(auth, admin, 'acme')))
    await refusedWith(server.url, old, "acme's old creds")
    await connectsWith(server.url, readFileSync(file))
  })

  test('a tenant rotated staged, its old key revoked by revokeStagedTenantKeys', async () => {
    const auth = loadAuthDir(server.authDir!)
    const file = tenantCredsFile(auth.dir, 'globex')
    const old = readFileSync(file)
    const { sub, iat } = await issued(old)
    await asAdmin((admin) => rotateTenantUser(auth, admin, 'globex', { keepOld: true }))
    await connectsWith(server.url, old)
    const revoked = await asAdmin((admin) => twoSecondsBefore(iat, () => revokeStagedTenantKeys(auth, admin, 'globex')))
    assert.deepEqual(revoked, [sub])
    await refusedWith(server.url, old, "globex's old creds")
    await connectsWith(server.url, readFileSync(file))
  })

  test('the system user rotated at once (it pushes its own revocation)', async () => {
    const auth = loadAuthDir(server.authDir!)
    const file = serviceCredsFile(auth.dir, 'system')
    const old = readFileSync(file)
    const { sub, iat } = await issued(old)
    await system.close()
    await twoSecondsBefore(iat, () => rotateSystemUser(auth, () => server.connect('system')))
    await refusedWith(server.url, old, 'the old system creds')
    assert.ok(readRevocations(auth.dir, SYSTEM_ACCOUNT).revoked[sub]!.at >= iat, 'the revocation covers its iat')
    await connectsWith(server.url, readFileSync(file))
  })
})
