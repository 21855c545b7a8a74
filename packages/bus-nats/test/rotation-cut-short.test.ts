/**
 * A rotation cut short between its writes, against a real nats-server: a service user's (`rotateServiceUser`) and a
 * tenant's (`rotateTenantUser`, staged or at once). The old key is listed as staged before the new creds replace it,
 * so no replaced key is left valid and unlisted, and `revokeStagedKeys` / `revokeStagedTenantKeys` never revoke the
 * key a creds file still holds. Each write is cut short by making it fail (the auth dir writes a temp file and
 * renames it over the file): a directory where its temp file goes, or its rename failing.
 */
import assert from 'node:assert/strict'
import fs, { type PathLike, mkdirSync, readFileSync, rmSync } from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'
import { join } from 'node:path'
import { after, before, describe, mock, test } from 'node:test'
import { parseCreds } from '@nats-io/jwt'
import type { NatsConnection } from '@nats-io/transport-node'
import {
  LOG_ACCOUNT,
  type TenantAdmin,
  credsUserKey,
  loadAuthDir,
  readRevocations,
  revocationsFile,
  revokeStagedKeys,
  revokeStagedTenantKeys,
  rotateServiceUser,
  rotateTenantUser,
  serviceCredsFile,
  tenantCredsFile,
} from '../src/nats-config/index.ts'
import { activeRecord } from '../src/nats-config/tenants.ts'
import { type TestNatsServer, connectsWith, refusedWith, startNatsServer } from '../src/testing/index.ts'
import { asTenantAdmin } from './support/auth-dir-ops.ts'

/** A directory where a write of `path` puts its temp file: that write fails (EISDIR), as if cut short there. */
async function blocked(path: string, fn: () => Promise<unknown>): Promise<void> {
  mkdirSync(`${path}.${process.pid}.tmp`)
  try {
    await assert.rejects(fn(), /EISDIR/)
  } finally {
    rmSync(`${path}.${process.pid}.tmp`, { recursive: true, force: true })
  }
}

/**
 * Runs `fn` with the rename that puts `path` in place failing once `first` was put in place: cut short after the
 * write of `first`, at the next write of `path` (an earlier write of `path` goes through).
 */
async function cutShortAfter(first: string, path: string, fn: () => Promise<unknown>): Promise<void> {
  const rename = fs.renameSync
  let firstWritten = false
  const renames = mock.method(fs, 'renameSync', (from: PathLike, to: PathLike) => {
    if (to === path && firstWritten) throw new Error(`cut short: ${path} not written`)
    rename(from, to)
    if (to === first) firstWritten = true
  })
  // The auth dir's modules import renameSync by name: their binding follows the mock only once synced.
  syncBuiltinESMExports()
  try {
    await assert.rejects(fn(), /cut short/)
  } finally {
    renames.mock.restore()
    syncBuiltinESMExports()
  }
}

describe('rotateServiceUser cut short', () => {
  let server: TestNatsServer
  let system: NatsConnection

  before(async () => {
    server = await startNatsServer()
    system = await server.connect('system')
  })
  after(async () => {
    await server?.stop()
  })

  test('a rotation that cannot list the old key as staged writes no new creds', async () => {
    const auth = loadAuthDir(server.authDir!)
    const file = serviceCredsFile(auth.dir, 'relay')
    const old = readFileSync(file)
    await blocked(revocationsFile(auth.dir, LOG_ACCOUNT), () => rotateServiceUser(auth, system, 'relay'))
    assert.deepEqual(readFileSync(file), old, 'the creds file is as it was')
    await connectsWith(server.url, readFileSync(file))
  })

  test('cut short before the new creds are written: the key in use stays staged, and revoke-old skips it', async () => {
    const auth = loadAuthDir(server.authDir!)
    const file = serviceCredsFile(auth.dir, 'gateway')
    const current = readFileSync(file)
    await blocked(file, () => rotateServiceUser(auth, system, 'gateway'))
    assert.deepEqual(readFileSync(file), current, 'the creds file is as it was')
    const key = await credsUserKey(current)
    assert.equal(readRevocations(auth.dir, LOG_ACCOUNT).staged[key]?.user, 'gateway', 'the key in use is staged')
    assert.deepEqual(await revokeStagedKeys(auth, system), [], 'the key in use is not revoked')
    await connectsWith(server.url, readFileSync(file))
  })
})

describe('rotateTenantUser cut short (staged or at once)', () => {
  let server: TestNatsServer
  before(async () => {
    server = await startNatsServer({ tenants: ['acme', 'globex'] })
  })
  after(async () => {
    await server?.stop()
  })

  /** Runs `fn` with a tenant admin connected with the system and operator creds files. */
  const asAdmin = <T>(fn: (admin: TenantAdmin) => Promise<T>): Promise<T> =>
    asTenantAdmin(loadAuthDir(server.authDir!), server.url, fn)
  const rotate = (tenant: string, keepOld: boolean) =>
    asAdmin((admin) => rotateTenantUser(loadAuthDir(server.authDir!), admin, tenant, { keepOld }))
  const revokeOld = (tenant: string) =>
    asAdmin((admin) => revokeStagedTenantKeys(loadAuthDir(server.authDir!), admin, tenant))
  const recordFile = (tenant: string) => join(server.authDir!, 'tenants', `${tenant}.json`)
  const staged = (tenant: string) => activeRecord(loadAuthDir(server.authDir!), tenant)?.staged ?? {}

  test('a rotation that cannot stage the old key in the tenant record writes no new creds', async () => {
    const file = tenantCredsFile(server.authDir!, 'acme')
    const current = readFileSync(file)
    const record = readFileSync(recordFile('acme'))
    for (const keepOld of [true, false]) {
      await blocked(recordFile('acme'), () => rotate('acme', keepOld))
      assert.deepEqual(readFileSync(file), current, `keepOld ${keepOld}: the creds file is as it was`)
      assert.deepEqual(readFileSync(recordFile('acme')), record, `keepOld ${keepOld}: the record is as it was`)
    }
    await connectsWith(server.url, current)
  })

  test('cut short before the new creds are written: the key in use stays staged and revoke-old skips it; run again, revoke-old refuses it', async () => {
    const file = tenantCredsFile(server.authDir!, 'acme')
    const current = readFileSync(file)
    const { sub, iat } = (await parseCreds(current)).uc
    for (const keepOld of [true, false]) {
      await blocked(file, () => rotate('acme', keepOld))
      assert.deepEqual(readFileSync(file), current, `keepOld ${keepOld}: the creds file is as it was`)
      assert.equal(staged('acme')[sub], iat, `keepOld ${keepOld}: the key in use is staged, with its iat`)
      assert.deepEqual(await revokeOld('acme'), [], 'the key in use is not revoked')
      assert.equal(staged('acme')[sub], iat, 'and stays staged')
      await connectsWith(server.url, current)
    }
    const rotated = await rotate('acme', true)
    assert.deepEqual(rotated.staged, [sub])
    await connectsWith(server.url, current)
    assert.deepEqual(await revokeOld('acme'), [sub])
    await refusedWith(server.url, current, "acme's replaced creds")
    await connectsWith(server.url, readFileSync(file))
  })

  test('a rotation at once cut short after its new creds are written, before the revocation is recorded: the old key stays staged and revoke-old refuses it', async () => {
    const file = tenantCredsFile(server.authDir!, 'globex')
    const old = readFileSync(file)
    const { sub, iat } = (await parseCreds(old)).uc
    await cutShortAfter(file, recordFile('globex'), () => rotate('globex', false))
    const written = readFileSync(file)
    assert.notEqual(await credsUserKey(written), sub, 'the new creds are written')
    assert.deepEqual(staged('globex'), { [sub]: iat }, 'the replaced key is staged, with its iat')
    await connectsWith(server.url, old)
    assert.deepEqual(await revokeOld('globex'), [sub])
    await refusedWith(server.url, old, "globex's replaced creds")
    await connectsWith(server.url, written)
  })
})
