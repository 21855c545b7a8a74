import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { type AuthDirLockBusy, authDirLockPath, withAuthDirLock } from '../src/nats-config/index.ts'

/** withAuthDirLock's busy notice: once per wait however many retries, not before `busyAfterMs`. */
describe('withAuthDirLock tells once that it waits', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ep-auth-lock-'))
  const lock = authDirLockPath(dir)
  // Held by this (live) process for the whole file: every call below waits until its timeout (about 8 retries).
  mkdirSync(lock)
  writeFileSync(join(lock, 'pid'), `${process.pid}\n`)
  after(() => rmSync(dir, { recursive: true, force: true }))

  const waitOut = async (busyAfterMs: number): Promise<AuthDirLockBusy[]> => {
    const told: AuthDirLockBusy[] = []
    await assert.rejects(
      withAuthDirLock(dir, async () => assert.fail('the lock is held'), {
        timeoutMs: 400,
        busyAfterMs,
        onBusy: (b) => told.push(b),
      }),
      (e: unknown) => isEventplaneError(e, 'bus.unavailable') && e.message.includes(`process ${process.pid}`),
    )
    return told
  }

  test('one call of onBusy over a whole wait, naming the lock and its holder', async () => {
    assert.deepEqual(await waitOut(0), [{ lock, holder: process.pid, timeoutMs: 400 }])
  })

  test('none while the wait is shorter than busyAfterMs', async () => {
    assert.deepEqual(await waitOut(10_000), [])
  })
})
