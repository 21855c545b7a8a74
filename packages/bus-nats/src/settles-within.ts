/**
 * Whether `p` settles (either way) within `ms`: true once it does, false when `ms` passed first (`p` then goes on
 * unobserved). With `ms` infinite, waits for it. How a stop waits a bounded time for a step that has no cancel
 * of its own: the relay's checkpoint write and lease release (RelayStop.settles), a heads round (HeadsPublisher.stop).
 */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  const settled = p.then(
    () => true,
    () => true,
  )
  if (ms === Number.POSITIVE_INFINITY) return settled
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)))
  try {
    return await Promise.race([settled, late])
  } finally {
    clearTimeout(timer)
  }
}
