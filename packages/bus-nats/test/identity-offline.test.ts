/**
 * Identity seeds offline (`keys offline` / `keys online`, identity-move.ts) against a real nats-server: once the
 * operator's, the system and log accounts' and the tenants' identity seeds are off the host, routine work runs on
 * signing keys alone (tenant add and rotate, every signing-key rotation, a service user's rotation, nats-setup run
 * again); what needs an identity seed fails with `bus.config` naming it and `evtctl keys online --from <dir>`
 * before anything is written; `keys online` brings back only the seeds the auth dir recorded.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { jetstream } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { credsAuthenticator } from '../src/nkeys.ts'
import {
  OFFLINE_RECORD,
  addTenant,
  bringIdentitySeedsOnline,
  connectAuthDirUser,
  connectTenantAdmin,
  initAuthDir,
  issueTenantUser,
  loadAuthDir,
  moveIdentitySeedsOffline,
  natsSetupMain,
  rotateOperatorSigningKey,
  rotateServiceUser,
  rotateSigningKey,
  rotateTenantUser,
  serviceCredsFile,
  signingPushedFile,
  signingSeedFile,
  tenantCredsFile,
} from '../src/nats-config/index.ts'
import { ensureNextSigningKey } from '../src/nats-config/signing-keys.ts'
import { STREAM_NAME } from '../src/subjects.ts'
import { type TestNatsServer, connectsWith, dirSnapshot, startNatsServer } from '../src/testing/index.ts'

const IDENTITIES = ['operator.nk', 'accounts/SYS.nk', 'accounts/EVENTPLANE.nk', 'tenants/acme.nk']

describe('identity seeds offline', () => {
  let server: TestNatsServer
  let dir: string
  let off: string
  const connectSystem = () => connectAuthDirUser(loadAuthDir(dir), 'system', server.url)
  /** Whether `tenant`'s creds read its `<tenant>_tail` consumer: its imports (activation tokens) hold. */
  const readsConsumer = async (tenant: string): Promise<string> => {
    const nc = await connect({
      servers: server.url,
      authenticator: credsAuthenticator(readFileSync(tenantCredsFile(dir, tenant))),
      inboxPrefix: `_INBOX_${tenant}`,
    })
    try {
      return await jetstream(nc, { timeout: 3000 })
        .consumers.get(STREAM_NAME, `${tenant}_tail`)
        .then(
          () => 'read',
          (e: unknown) => String(e),
        )
    } finally {
      await nc.close()
    }
  }

  before(async () => {
    server = await startNatsServer({ tenants: ['acme'] })
    dir = server.authDir!
    off = mkdtempSync(join(tmpdir(), 'ep-identity-off-'))
  })
  after(async () => {
    await server?.stop()
    rmSync(off, { recursive: true, force: true })
  })

  test('keys offline moves every identity seed off the host; tenant add, rotations and nats-setup then need none', async () => {
    // Refused while a signing key is not known to the server: its identity key would still sign.
    const pushed = signingPushedFile(dir, { tenant: 'acme' })
    const saved = readFileSync(pushed)
    rmSync(pushed)
    const before = dirSnapshot(dir)
    await assert.rejects(
      moveIdentitySeedsOffline(loadAuthDir(dir), off),
      (e) => isEventplaneError(e, 'bus.config') && /tenant acme .*evtctl tenant add acme/.test(e.message),
    )
    assert.deepEqual(dirSnapshot(dir), before, 'nothing moved')
    assert.deepEqual(readdirSync(off), [])
    writeFileSync(pushed, saved)

    const moved = await moveIdentitySeedsOffline(loadAuthDir(dir), off)
    assert.deepEqual(moved.map((m) => m.seed).sort(), [...IDENTITIES].sort())
    for (const rel of IDENTITIES) {
      assert.equal(existsSync(join(dir, rel)), false, `${rel} gone from the auth dir`)
      assert.equal(statSync(join(off, rel)).mode & 0o777, 0o600, `${rel} moved, mode 0600`)
    }
    assert.doesNotMatch(readFileSync(join(dir, OFFLINE_RECORD), 'utf8'), /"S[OAU][A-Z2-7]{50,}/, 'no seed recorded')

    const auth = loadAuthDir(dir)
    const admin = await connectTenantAdmin(auth, server.url)
    try {
      const globex = await addTenant(auth, admin, 'globex')
      assert.equal(globex.created, true)
      assert.equal(await readsConsumer('globex'), 'read', 'a tenant added offline: its imports hold')
      await rotateTenantUser(auth, admin, 'acme')
      await connectsWith(server.url, readFileSync(tenantCredsFile(dir, 'acme')))
      await connectsWith(server.url, await issueTenantUser(auth, 'acme', 'acme-extra'))
    } finally {
      await admin.close()
    }
    for (const target of [{ account: 'log' }, { account: 'system' }, { tenant: 'acme' }] as const)
      await rotateSigningKey(auth, connectSystem, target)
    for (const tenant of ['acme', 'globex']) assert.equal(await readsConsumer(tenant), 'read', `${tenant} reads`)
    const system = await connectSystem()
    try {
      await rotateServiceUser(auth, system, 'relay')
    } finally {
      await system.close()
    }
    await initAuthDir(dir)
    for (const user of ['relay', 'gateway', 'system'] as const)
      await connectsWith(server.url, readFileSync(serviceCredsFile(dir, user)))
    for (const rel of IDENTITIES) assert.equal(existsSync(join(dir, rel)), false, `${rel} still offline`)
  })

  test('what needs an identity seed (keys rotate operator, nats-setup re-signing operator.jwt) fails naming it, before writing', async () => {
    const auth = loadAuthDir(dir)
    /** The offline error naming operator.nk, what needs it (`needs`) and the command that brings it back. */
    const needsOperator = (needs: string) => (e: unknown) =>
      isEventplaneError(e, 'bus.config') &&
      e.message.startsWith(
        `seed file ${join(dir, 'operator.nk')} is offline (moved by evtctl keys offline); ${needs}`,
      ) &&
      e.message.endsWith(`: evtctl keys online --from ${off}`)
    let before = dirSnapshot(dir)
    await assert.rejects(rotateOperatorSigningKey(auth, connectSystem), needsOperator('keys rotate operator'))
    assert.deepEqual(dirSnapshot(dir), before, 'keys rotate operator: nothing written')
    // A first step of the operator rotation cut short before it re-signed operator.jwt (run while online).
    const next = signingSeedFile(dir, { operator: true }, 'next')
    ensureNextSigningKey(dir, { operator: true })
    before = dirSnapshot(dir)
    const io = { stdout: { write: () => true }, stderr: { write: () => true } }
    const setup = ['--auth-dir', dir, '--store-dir', server.storeDir, '--out', join(off, 'nats.conf')]
    await assert.rejects(natsSetupMain(setup, io), needsOperator('nats-setup'))
    assert.deepEqual(dirSnapshot(dir), before, 'nats-setup: nothing written')
    rmSync(next)
  })

  test('keys online brings back the recorded seeds, each checked; a wrong one fails naming it, nothing written', async () => {
    const sys = join(off, 'accounts', 'SYS.nk')
    const right = readFileSync(sys)
    writeFileSync(sys, readFileSync(join(off, 'accounts', 'EVENTPLANE.nk')))
    const before = dirSnapshot(dir)
    await assert.rejects(
      bringIdentitySeedsOnline(loadAuthDir(dir), off),
      (e) => isEventplaneError(e, 'bus.config') && e.message.startsWith(`seed file ${sys} holds the seed of A`),
    )
    assert.deepEqual(dirSnapshot(dir), before, 'nothing written')
    writeFileSync(sys, right)
    const back = await bringIdentitySeedsOnline(loadAuthDir(dir), off)
    assert.deepEqual(back.map((m) => m.seed).sort(), [...IDENTITIES].sort())
    for (const rel of IDENTITIES)
      assert.equal(readFileSync(join(dir, rel), 'utf8'), readFileSync(join(off, rel), 'utf8'))
    assert.equal(existsSync(join(dir, OFFLINE_RECORD)), false)
    const auth = loadAuthDir(dir)
    const staged = await rotateOperatorSigningKey(auth, connectSystem)
    assert.equal(staged.step, 'staged', 'keys rotate operator runs again')
  })
})
