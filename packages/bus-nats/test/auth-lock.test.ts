import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
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

/**
 * Who holds the lock: a holder writes its pid at once (a waiter names it); a lock whose holder has not named itself
 * yet (its `.lock` directory without `pid`) is waited for while it is young, and taken over once it is older than a
 * minute (its holder died in between).
 */
describe('withAuthDirLock: the holder named, or not yet', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ep-auth-lock-unnamed-'))
  const lock = authDirLockPath(dir)
  after(() => rmSync(dir, { recursive: true, force: true }))

  test('a young one is waited for (holder unnamed), then bus.unavailable; fn never runs', async () => {
    mkdirSync(lock)
    const told: AuthDirLockBusy[] = []
    await assert.rejects(
      withAuthDirLock(dir, async () => assert.fail('the lock is held'), {
        timeoutMs: 300,
        onBusy: (b) => told.push(b),
      }),
      (e: unknown) => isEventplaneError(e, 'bus.unavailable') && e.message.includes('process unnamed'),
    )
    assert.deepEqual(told, [{ lock, holder: 'unnamed', timeoutMs: 300 }])
    rmSync(lock, { recursive: true })
  })

  test('a holder names itself at once: a waiter is told its pid', async () => {
    const told: AuthDirLockBusy[] = []
    await withAuthDirLock(dir, async () => {
      await assert.rejects(
        withAuthDirLock(dir, async () => assert.fail('the lock is held'), {
          timeoutMs: 300,
          onBusy: (b) => told.push(b),
        }),
        (e: unknown) => isEventplaneError(e, 'bus.unavailable') && e.message.includes(`process ${process.pid}`),
      )
    })
    assert.deepEqual(told, [{ lock, holder: process.pid, timeoutMs: 300 }])
  })

  test('one older than a minute is taken over at once', async () => {
    mkdirSync(lock)
    const old = new Date(Date.now() - 2 * 60_000)
    utimesSync(lock, old, old)
    const told: AuthDirLockBusy[] = []
    assert.equal(await withAuthDirLock(dir, async () => 'ran', { timeoutMs: 300, onBusy: (b) => told.push(b) }), 'ran')
    assert.deepEqual(told, [], 'no wait')
    assert.equal(existsSync(lock), false, 'released')
  })
})
