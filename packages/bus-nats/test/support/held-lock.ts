import { type AuthDir, withAuthDirLock } from '../../src/nats-config/index.ts'
import { within } from '../fixtures.ts'

/**
 * Runs `change` while the test holds the auth dir's lock: waits until the change says it waits for the lock (its
 * busy notice), runs `unchanged` then (what it must not have written yet), releases the lock and returns what the
 * change returns once it has the lock.
 */
export async function waitsForHeldLock<T>(
  auth: AuthDir,
  change: (auth: AuthDir) => Promise<T>,
  unchanged: () => void,
): Promise<T> {
  let release = () => {}
  let held = () => {}
  const holding = new Promise<void>((resolve) => {
    held = resolve
  })
  const holder = withAuthDirLock(auth.dir, async () => {
    held()
    await new Promise<void>((resolve) => {
      release = resolve
    })
  })
  await holding
  let busy = () => {}
  const waiting = new Promise<void>((resolve) => {
    busy = resolve
  })
  const changing = change({ ...auth, lock: { onBusy: busy } })
  changing.catch(() => {})
  try {
    await within(waiting, 5000, 'the change to wait for the lock')
    unchanged()
  } finally {
    release()
    await holder
  }
  return within(changing, 10_000, 'the change once the lock is free')
}
