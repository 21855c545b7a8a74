import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Unavailable } from '@eventplane/core'

export interface AuthDirLockOptions {
  /** How long to wait for another holder (default 30 s); then `bus.unavailable`. */
  timeoutMs?: number
  /** Called once when the lock is held by someone else and this call starts waiting (tests). */
  onBusy?: () => void
}

/** A lock left by a process that died between taking it and naming itself is stale after this long. */
const UNNAMED_STALE_MS = 60_000

/** `<dir>/.lock`: a directory, made atomically; its `pid` file names the holder. */
export function authDirLockPath(dir: string): string {
  return join(dir, '.lock')
}

/**
 * Runs `fn` holding the auth dir's lock, so that changes to its state (the
 * revocation list and the log account JWT, a tenant record and its account
 * JWT) read, merge, write and push one at a time, across processes on the
 * host: two rotations at once would otherwise each push a JWT built from
 * what it read, and the later push of the earlier read would un-revoke the
 * other's key. Waits while another live process holds it; a lock whose
 * holder is gone is taken over. Not re-entrant.
 */
export async function withAuthDirLock<T>(
  dir: string,
  fn: () => Promise<T>,
  options: AuthDirLockOptions = {},
): Promise<T> {
  const lock = authDirLockPath(dir)
  const deadline = Date.now() + (options.timeoutMs ?? 30_000)
  let waiting = false
  for (;;) {
    try {
      mkdirSync(lock, { mode: 0o700 })
      writeFileSync(join(lock, 'pid'), `${process.pid}\n`)
      break
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
      const holder = lockHolder(lock)
      if (holder === 'gone') {
        rmSync(lock, { recursive: true, force: true })
        continue
      }
      if (!waiting) {
        waiting = true
        options.onBusy?.()
      }
      if (Date.now() > deadline)
        throw new Unavailable(
          'bus.unavailable',
          `the auth dir ${dir} is locked by process ${holder} (a rotation, tenant change or nats-setup); try again`,
        )
      await sleep(50)
    }
  }
  try {
    return await fn()
  } finally {
    rmSync(lock, { recursive: true, force: true })
  }
}

/** The pid holding `lock`, `unnamed` while it has not written it yet, or `gone` when it no longer runs. */
function lockHolder(lock: string): number | 'unnamed' | 'gone' {
  let pid: number
  try {
    pid = Number(readFileSync(join(lock, 'pid'), 'utf8').trim())
  } catch {
    try {
      return Date.now() - statSync(lock).mtimeMs > UNNAMED_STALE_MS ? 'gone' : 'unnamed'
    } catch {
      return 'unnamed' // released meanwhile: the next mkdir tells
    }
  }
  if (!Number.isSafeInteger(pid) || pid <= 0) return 'gone'
  try {
    process.kill(pid, 0)
    return pid
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM' ? pid : 'gone'
  }
}
