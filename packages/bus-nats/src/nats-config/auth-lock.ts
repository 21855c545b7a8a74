import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Unavailable } from '@eventplane/core'

export interface AuthDirLockOptions {
  /** How long to wait for another holder (default 30 s); then `bus.unavailable`. */
  timeoutMs?: number
  /** Called once when this call has waited `busyAfterMs` for another holder: a notice to the operator. */
  onBusy?: (busy: AuthDirLockBusy) => void
  /** How long to wait before `onBusy` (default 0: as soon as another holds the lock). */
  busyAfterMs?: number
}

/** What {@link AuthDirLockOptions.onBusy} is told: the lock waited for and its holder's pid (`unnamed` before it wrote it). */
export interface AuthDirLockBusy {
  lock: string
  holder: number | 'unnamed'
  timeoutMs: number
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
 * holder is gone is taken over. Not re-entrant. `auth` is the dir, or an
 * `AuthDir` whose `lock` says how this process waits (a command's notice).
 */
export async function withAuthDirLock<T>(
  auth: string | { dir: string; lock?: AuthDirLockOptions },
  fn: () => Promise<T>,
  given: AuthDirLockOptions = {},
): Promise<T> {
  const dir = typeof auth === 'string' ? auth : auth.dir
  const options = typeof auth === 'string' ? given : { ...auth.lock, ...given }
  const lock = authDirLockPath(dir)
  const timeoutMs = options.timeoutMs ?? 30_000
  const start = Date.now()
  const deadline = start + timeoutMs
  let told = false
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
      if (!told && Date.now() - start >= (options.busyAfterMs ?? 0)) {
        told = true
        options.onBusy?.({ lock, holder, timeoutMs })
      }
      if (Date.now() > deadline)
        throw new Unavailable(
          'bus.unavailable',
          `the auth dir ${dir} is locked by process ${holder} (a rotation, tenant change or nats-setup); try again`,
          { details: { auth_dir_lock: lock, holder } },
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

/**
 * The lock options of a command an operator runs (`evtctl`, `nats-setup`): once it has waited a second for
 * another holder, one line to `stderr` naming the lock and its holder, so a wait of up to 30 s is not silent.
 */
export function authDirLockNotice(program: string, stderr: { write(s: string): unknown }): AuthDirLockOptions {
  return {
    busyAfterMs: 1000,
    onBusy: ({ lock, holder, timeoutMs }) =>
      void stderr.write(
        `${program}: waiting for the auth dir lock (${lock}) held by ${holder === 'unnamed' ? 'a process starting up' : `pid ${holder}`} (a rotation, tenant change or nats-setup; up to ${Math.round(timeoutMs / 1000)} s) …\n`,
      ),
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
