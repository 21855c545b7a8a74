/**
 * Every change of an auth dir's credential state holds the auth dir's lock, against a real nats-server: held by
 * another (the test), each waits (its busy notice), writes nothing while it waits, then does its work once the
 * lock is free. A change that did not take the lock would read, write and push while another holds it, and the
 * later push of the earlier read would undo the other's revocation (mutation audit mut5: rotateTenantUser,
 * revokeStagedTenantKeys, rotateSigningKey, rotateOperatorSigningKey, keys offline / online without the lock).
 * `rotateServiceUser` and `rotateSystemUser` have theirs in creds-rotation and system-rotation.
 */
import assert from 'node:assert/strict'
import { readFileSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import {
  type AuthDir,
  bringIdentitySeedsOnline,
  loadAuthDir,
  moveIdentitySeedsOffline,
  revokeStagedSystemKeys,
  revokeStagedTenantKeys,
  rotateOperatorSigningKey,
  rotateSigningKey,
  rotateSystemUser,
  rotateTenantUser,
  serviceCredsFile,
  tenantCredsFile,
} from '../src/nats-config/index.ts'
import { type TestNatsServer, connectsWith, dirSnapshot, refusedWith, startNatsServer } from '../src/testing/index.ts'
import { asTenantAdmin } from './support/auth-dir-ops.ts'
import { waitsForHeldLock } from './support/held-lock.ts'

describe('credential changes wait for the auth dir lock', () => {
  let server: TestNatsServer
  let dir: string
  const connectSystem = () => server.connect('system')
  /** `change` run while the test holds the lock: the auth dir is as it was until the lock is free. */
  const waits = <T>(change: (held: AuthDir) => Promise<T>): Promise<T> => {
    const before = dirSnapshot(dir)
    return waitsForHeldLock(loadAuthDir(dir), change, () =>
      assert.deepEqual(dirSnapshot(dir), before, 'nothing written while it waits'),
    )
  }
  before(async () => {
    server = await startNatsServer({ tenants: ['acme'] })
    dir = server.authDir!
  })
  after(async () => {
    await server?.stop()
    if (dir !== undefined) rmSync(`${dir}-offline`, { recursive: true, force: true })
  })

  test("a tenant's rotation and its revoke-old", async () => {
    const file = tenantCredsFile(dir, 'acme')
    const old = readFileSync(file)
    const rotated = await asTenantAdmin(loadAuthDir(dir), server.url, (admin) =>
      waits((held) => rotateTenantUser(held, admin, 'acme', { keepOld: true })),
    )
    assert.equal(rotated.staged.length, 1)
    await connectsWith(server.url, old)
    const revoked = await asTenantAdmin(loadAuthDir(dir), server.url, (admin) =>
      waits((held) => revokeStagedTenantKeys(held, admin, 'acme')),
    )
    assert.deepEqual(revoked, rotated.staged)
    await refusedWith(server.url, old, "acme's staged key, once revoke-old has the lock")
    await connectsWith(server.url, readFileSync(file))
  })

  test("the system user's revoke-old", async () => {
    const file = serviceCredsFile(dir, 'system')
    const old = readFileSync(file)
    const rotated = await rotateSystemUser(loadAuthDir(dir), undefined, { keepOld: true })
    assert.deepEqual(await waits((held) => revokeStagedSystemKeys(held, connectSystem)), rotated.staged)
    await refusedWith(server.url, old, "system's staged key")
  })

  test("an account's signing key rotation", async () => {
    const file = tenantCredsFile(dir, 'acme')
    const old = readFileSync(file)
    await waits((held) => rotateSigningKey(held, connectSystem, { tenant: 'acme' }))
    await refusedWith(server.url, old, 'creds the old signing key issued')
    await connectsWith(server.url, readFileSync(file))
  })

  test('keys offline and keys online', async () => {
    // Beside the auth dir, its name starting with the auth dir's: not inside it.
    const off = `${dir}-offline`
    const moved = await waits((held) => moveIdentitySeedsOffline(held, off))
    assert.ok(moved.length >= 4, 'the identity seeds are moved')
    // Mode 0600 in 0700 directories, those keys offline made included.
    for (const d of [off, join(off, 'accounts'), join(off, 'tenants')])
      assert.equal(statSync(d).mode & 0o777, 0o700, `${d}: mode 0700`)
    for (const s of moved) assert.equal(statSync(join(off, s.seed)).mode & 0o777, 0o600, `${s.seed}: mode 0600`)
    const back = await waits((held) => bringIdentitySeedsOnline(held, off))
    assert.deepEqual(back.map((s) => s.seed).sort(), moved.map((s) => s.seed).sort())
  })

  test("the operator signing key rotation's first step", async () => {
    const step = await waits((held) => rotateOperatorSigningKey(held, connectSystem))
    assert.equal(step.step, 'staged')
  })
})
