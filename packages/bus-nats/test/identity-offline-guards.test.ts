/**
 * The guards of `keys offline` / `keys online` (identity-move.ts, offline-key.ts) the main offline test does not
 * reach, against a real nats-server: a target inside the auth dir, another seed already at the target, a revoked
 * tenant (its seed neither asked for nor brought back), a corrupted offline record, and the offline key's own
 * refusal to sign (the last guard, reached when a signing key is not listed as pushed).
 */
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import {
  OFFLINE_RECORD,
  bringIdentitySeedsOnline,
  issueTenantUser,
  loadAuthDir,
  moveIdentitySeedsOffline,
  signingPushedFile,
  tenantCredsFile,
} from '../src/nats-config/index.ts'
import { createAccount } from '../src/nkeys.ts'
import { type TestNatsServer, connectsWith, dirSnapshot, startNatsServer } from '../src/testing/index.ts'

const seedText = (key: { getSeed(): Uint8Array }): string => `${new TextDecoder().decode(key.getSeed())}\n`

describe('identity seeds offline: the guards', () => {
  let server: TestNatsServer
  let dir: string
  let off: string
  const loadTenantRecord = (tenant: string): { account: string } =>
    JSON.parse(readFileSync(join(dir, 'tenants', `${tenant}.json`), 'utf8')) as { account: string }
  before(async () => {
    server = await startNatsServer({ tenants: ['acme', 'globex', 'initech'] })
    dir = server.authDir!
    off = mkdtempSync(join(tmpdir(), 'ep-identity-guards-'))
  })
  after(async () => {
    await server?.stop()
    rmSync(off, { recursive: true, force: true })
  })

  test('refused before anything moves: a target inside the auth dir, another seed at the target', async () => {
    const before = dirSnapshot(dir)
    for (const inside of [dir, join(dir, 'offline'), join(dir, 'accounts')])
      await assert.rejects(
        moveIdentitySeedsOffline(loadAuthDir(dir), inside),
        (e) => isEventplaneError(e, 'bus.config') && /is inside the auth dir/.test(e.message),
        inside,
      )
    assert.deepEqual(dirSnapshot(dir), before, 'inside: nothing written')
    // Another account's seed where the system account's would go (another auth dir's backup): never overwritten.
    const other = join(off, 'accounts', 'SYS.nk')
    mkdirSync(join(off, 'accounts'), { recursive: true })
    const foreign = seedText(createAccount())
    writeFileSync(other, foreign, { mode: 0o600 })
    await assert.rejects(
      moveIdentitySeedsOffline(loadAuthDir(dir), off),
      (e) =>
        isEventplaneError(e, 'bus.config') &&
        e.message.startsWith(`seed file ${other} holds another account seed`) &&
        !e.message.includes(foreign.trim()),
    )
    assert.deepEqual(dirSnapshot(dir), before, 'another seed: nothing written in the auth dir')
    assert.equal(readFileSync(other, 'utf8'), foreign, 'the other seed is kept')
    assert.deepEqual(readdirSync(off, { recursive: true }).sort(), ['accounts', 'accounts/SYS.nk'], 'nothing copied')
    rmSync(other)
  })

  test('keys offline with a revoked tenant moves the active seeds (the same seed at the target kept); a re-add keeps the account', async () => {
    await server.revokeTenant('globex')
    // A run cut short after its copies: the same seed already there.
    writeFileSync(join(off, 'operator.nk'), readFileSync(join(dir, 'operator.nk')), { mode: 0o600 })
    const moved = await moveIdentitySeedsOffline(loadAuthDir(dir), off)
    assert.deepEqual(moved.map((m) => m.seed).sort(), [
      'accounts/EVENTPLANE.nk',
      'accounts/SYS.nk',
      'operator.nk',
      'tenants/acme.nk',
      'tenants/initech.nk',
    ])
    // An active tenant added again offline keeps its account: its key is never replaced by a new one.
    const account = loadTenantRecord('acme').account
    const again = await server.addTenant('acme')
    assert.equal(again.created, false)
    assert.equal(again.record.account, account, "acme's account is kept")
    assert.equal(existsSync(join(dir, 'tenants', 'acme.nk')), false, 'no new seed on the host')
    await connectsWith(server.url, readFileSync(tenantCredsFile(dir, 'acme')))
  })

  test('offline: an identity key asked to sign refuses (bus.config naming it), a corrupted record is named', async () => {
    // acme's signing key not listed as pushed: its identity key would sign its users, and it is offline.
    const pushed = signingPushedFile(dir, { tenant: 'acme' })
    const saved = readFileSync(pushed)
    rmSync(pushed)
    try {
      await assert.rejects(
        issueTenantUser(loadAuthDir(dir), 'acme', 'acme-extra'),
        (e) =>
          isEventplaneError(e, 'bus.config') &&
          e.message.startsWith(`seed file ${join(dir, 'tenants', 'acme.nk')} is offline`) &&
          e.message.endsWith(`evtctl keys online --from ${off}`),
      )
    } finally {
      writeFileSync(pushed, saved)
    }
    const record = join(dir, OFFLINE_RECORD)
    const kept = readFileSync(record)
    writeFileSync(record, '{"seeds": ')
    try {
      assert.throws(
        () => loadAuthDir(dir),
        (e) =>
          isEventplaneError(e, 'bus.config') &&
          e.message.startsWith(`${record} is not a record of offline identity seeds`),
      )
    } finally {
      writeFileSync(record, kept)
    }
  })

  test('keys online leaves out the seed of a tenant revoked while offline', async () => {
    await server.revokeTenant('initech')
    const back = await bringIdentitySeedsOnline(loadAuthDir(dir), off)
    assert.deepEqual(back.map((m) => m.seed).sort(), [
      'accounts/EVENTPLANE.nk',
      'accounts/SYS.nk',
      'operator.nk',
      'tenants/acme.nk',
    ])
    assert.equal(existsSync(join(dir, 'tenants', 'initech.nk')), false, "the revoked tenant's seed stays off the host")
    assert.equal(existsSync(join(dir, OFFLINE_RECORD)), false)
  })
})
