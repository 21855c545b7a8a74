import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Polls `fn` until it returns true or `ms` pass. The gap-safe read waits for
 * every older open transaction of its database (autovacuum's too, briefly),
 * so tests that read the global order poll with a deadline.
 */
export async function eventually(fn: () => Promise<boolean> | boolean, ms = 30_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms`)
    await sleep(50)
  }
}

/** Settles as `p` does, or rejects naming `what` after `ms`: a wait that would never end fails fast, explained. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([p, late])
  } finally {
    clearTimeout(timer)
  }
}
