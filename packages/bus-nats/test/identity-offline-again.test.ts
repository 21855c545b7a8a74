/**
 * Identity seeds offline, continued (identity-move.ts, offline-key.ts) against a real nats-server: `keys offline`
 * run again moves only the seeds still on the host (a tenant added since) and keeps the record of the others;
 * a corrupted `identity-seeds.offline.json` fails with one `bus.config` line naming it before anything is
 * written or copied; `tenant revoke` works with every identity seed offline (the operator's signing key signs
 * the tombstone), and `keys online` then brings back the others.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { connect } from '@nats-io/transport-node'
import { credsAuthenticator } from '../src/nkeys.ts'
import {
  OFFLINE_RECORD,
  type OfflineSeeds,
  addTenant,
  bringIdentitySeedsOnline,
  connectTenantAdmin,
  identitySeedsLeftOnHost,
  loadAuthDir,
  moveIdentitySeedsOffline,
  revokeTenant,
  tenantCredsFile,
} from '../src/nats-config/index.ts'
import { type TestNatsServer, connectsWith, dirSnapshot, refusedWith, startNatsServer } from '../src/testing/index.ts'

const FIRST = ['accounts/EVENTPLANE.nk', 'accounts/SYS.nk', 'operator.nk', 'tenants/acme.nk']

describe('identity seeds offline, continued', () => {
  let server: TestNatsServer
  let dir: string
  let off: string
  const record = (): OfflineSeeds =>
    (JSON.parse(readFileSync(join(dir, OFFLINE_RECORD), 'utf8')) as { seeds: OfflineSeeds }).seeds
  /** A tenant added through the auth dir as it is on disk (the fixture's own copy still holds every seed). */
  const add = async (tenant: string) => {
    const auth = loadAuthDir(dir)
    const admin = await connectTenantAdmin(auth, server.url)
    try {
      // `readmit`: acme is added again after its revoke (below).
      return await addTenant(auth, admin, tenant, { readmit: true })
    } finally {
      await admin.close()
    }
  }

  before(async () => {
    server = await startNatsServer({ tenants: ['acme'] })
    dir = server.authDir!
    off = mkdtempSync(join(tmpdir(), 'ep-identity-again-'))
    const moved = await moveIdentitySeedsOffline(loadAuthDir(dir), off)
    assert.deepEqual(moved.map((m) => m.seed).sort(), FIRST)
  })
  after(async () => {
    await server?.stop()
    rmSync(off, { recursive: true, force: true })
  })

  test('keys offline run again moves only the seed of a tenant added since, keeps the others recorded; a third run moves none', async () => {
    assert.deepEqual(identitySeedsLeftOnHost(loadAuthDir(dir)), { seeds: [], to: off })
    const first = record()
    await add('globex')
    assert.deepEqual(identitySeedsLeftOnHost(loadAuthDir(dir)), { seeds: ['tenants/globex.nk'], to: off })
    // Another --to would split them: keys online reads every seed from one directory.
    const other = join(off, 'elsewhere')
    const unchanged = dirSnapshot(dir)
    await assert.rejects(
      moveIdentitySeedsOffline(loadAuthDir(dir), other),
      (e) =>
        isEventplaneError(e, 'bus.config') &&
        e.message.startsWith(`identity seeds of ${dir} are offline in ${off}: give --to ${off} `),
    )
    assert.equal(existsSync(other), false, 'nothing copied')
    assert.deepEqual(dirSnapshot(dir), unchanged, 'nothing written')

    const again = await moveIdentitySeedsOffline(loadAuthDir(dir), off)
    assert.deepEqual(
      again.map((m) => m.seed),
      ['tenants/globex.nk'],
    )
    assert.equal(existsSync(join(dir, 'tenants', 'globex.nk')), false)
    assert.equal(statSync(join(off, 'tenants', 'globex.nk')).mode & 0o777, 0o600)
    const second = record()
    assert.deepEqual(Object.keys(second).sort(), [...FIRST, 'tenants/globex.nk'].sort())
    for (const rel of FIRST) assert.deepEqual(second[rel], first[rel], `${rel}: its record kept as it was`)
    assert.equal(second['tenants/globex.nk']?.key, again[0]?.key)

    const before = dirSnapshot(dir)
    const offBefore = dirSnapshot(off)
    assert.deepEqual(await moveIdentitySeedsOffline(loadAuthDir(dir), off), [], 'a third run moves nothing')
    assert.deepEqual(dirSnapshot(dir), before, 'and writes nothing')
    assert.deepEqual(dirSnapshot(off), offBefore)
  })

  test('a corrupted identity-seeds.offline.json fails with one bus.config line naming it, nothing written or copied', async () => {
    const file = join(dir, OFFLINE_RECORD)
    const good = readFileSync(file, 'utf8')
    const seeds = record()
    const edited = (edit: (s: Record<string, Record<string, unknown>>) => void): string => {
      const copy = structuredClone(seeds) as unknown as Record<string, Record<string, unknown>>
      edit(copy)
      return JSON.stringify({ seeds: copy })
    }
    const cases: [string, string, string][] = [
      [
        'a missing field',
        edited((s) => delete s['operator.nk']!.to),
        '/seeds/operator.nk/to: expected required property',
      ],
      [
        'a wrong type',
        edited((s) => {
          s['accounts/SYS.nk']!.moved_at = 7
        }),
        '/seeds/accounts/SYS.nk/moved_at: expected string',
      ],
      [
        'a public key of the wrong role',
        edited((s) => {
          s['operator.nk']!.key = s['accounts/SYS.nk']!.key
        }),
        '/seeds/operator.nk/key: an account public key, not an operator one',
      ],
      [
        'not a public key',
        edited((s) => {
          s['tenants/acme.nk']!.key = 'SAAbogus'
        }),
        '/seeds/tenants/acme.nk/key: expected string of its form',
      ],
      [
        'an entry at another path',
        edited((s) => {
          s['../outside.nk'] = s['tenants/acme.nk']!
        }),
        '/seeds: an entry not at the path of an identity seed',
      ],
      [
        'an empty place (keys online would read the working directory)',
        edited((s) => {
          s['accounts/EVENTPLANE.nk']!.to = ''
        }),
        '/seeds/accounts/EVENTPLANE.nk/to: expected string length greater or equal to 1',
      ],
      ['no seeds', '{}', '/seeds: expected required property'],
      ['a truncated file', good.slice(0, Math.floor(good.length / 2)), 'not JSON: truncated or corrupted'],
    ]
    // A seed on the host that keys offline would copy: a corrupted record must stop it before the copy.
    await add('initech')
    const auth = loadAuthDir(dir)
    try {
      for (const [what, text, fault] of cases) {
        writeFileSync(file, text)
        const expected = (e: unknown) =>
          isEventplaneError(e, 'bus.config') &&
          e.message === `${file} is not a record of offline identity seeds (${fault})` &&
          !e.message.includes('\n')
        const before = dirSnapshot(dir)
        assert.throws(() => loadAuthDir(dir), expected, `${what}: loading the auth dir`)
        await assert.rejects(moveIdentitySeedsOffline(auth, off), expected, `${what}: keys offline`)
        assert.equal(existsSync(join(off, 'tenants', 'initech.nk')), false, `${what}: nothing copied`)
        await assert.rejects(bringIdentitySeedsOnline(auth, off), expected, `${what}: keys online`)
        assert.deepEqual(dirSnapshot(dir), before, `${what}: nothing written`)
      }
    } finally {
      writeFileSync(file, good)
    }
    assert.deepEqual(
      (await moveIdentitySeedsOffline(loadAuthDir(dir), off)).map((m) => m.seed),
      ['tenants/initech.nk'],
    )
  })

  test('tenant revoke works with every identity seed offline; added again, its old seed at --to is named; keys online brings back the others', async () => {
    const creds = readFileSync(tenantCredsFile(dir, 'acme'))
    const acme = await connect({
      servers: server.url,
      authenticator: credsAuthenticator(creds),
      maxReconnectAttempts: 0,
    })
    const closed = acme.closed()
    const auth = loadAuthDir(dir)
    const admin = await connectTenantAdmin(auth, server.url)
    try {
      const revoked = await revokeTenant(auth, admin, 'acme')
      assert.equal(revoked.status, 'revoked')
    } finally {
      await admin.close()
    }
    await closed
    await refusedWith(server.url, creds, "revoked acme's creds")
    await connectsWith(server.url, readFileSync(tenantCredsFile(dir, 'globex')))
    assert.equal(existsSync(tenantCredsFile(dir, 'acme')), false)

    // acme added again (a new account): its old seed at --to is named, not overwritten, nothing moved.
    const old = readFileSync(join(off, 'tenants', 'acme.nk'), 'utf8')
    const readded = await add('acme')
    const before = dirSnapshot(dir)
    await assert.rejects(
      moveIdentitySeedsOffline(loadAuthDir(dir), off),
      (e) =>
        isEventplaneError(e, 'bus.config') &&
        e.message.startsWith(
          `seed file ${join(off, 'tenants', 'acme.nk')} holds the seed keys offline moved there before (A`,
        ) &&
        e.message.includes('move it away, then run keys offline again'),
    )
    assert.deepEqual(dirSnapshot(dir), before, 'nothing moved')
    assert.equal(readFileSync(join(off, 'tenants', 'acme.nk'), 'utf8'), old, 'the old seed kept')
    renameSync(join(off, 'tenants', 'acme.nk'), join(off, 'tenants', 'acme.nk.revoked'))
    const moved = await moveIdentitySeedsOffline(loadAuthDir(dir), off)
    assert.deepEqual(moved, [{ seed: 'tenants/acme.nk', key: readded.record.account }])

    const back = await bringIdentitySeedsOnline(loadAuthDir(dir), off)
    assert.deepEqual(back.map((m) => m.seed).sort(), [
      'accounts/EVENTPLANE.nk',
      'accounts/SYS.nk',
      'operator.nk',
      'tenants/acme.nk',
      'tenants/globex.nk',
      'tenants/initech.nk',
    ])
    assert.notEqual(
      readFileSync(join(dir, 'tenants', 'acme.nk'), 'utf8'),
      old,
      "the new acme's seed, not the revoked one's",
    )
    assert.equal(existsSync(join(dir, OFFLINE_RECORD)), false)
  })
})
