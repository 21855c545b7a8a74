/** A live feed that can be stopped from outside while a consumer is parked in (or away from) `next()`. */
export interface LiveIterable<T> extends AsyncIterable<T> {
  /** Stops the feed; a pending or later `next()` returns done. */
  stop(): Promise<void>
  /** Resolves once the feed ended: stopped, aborted, or its source closed. */
  closed: Promise<void>
}

export interface LiveIterableOptions<S, T> {
  /** Maps a source item; `undefined` skips it. */
  map(item: S): T | undefined
  /** Stops the source (unsubscribe, stop pulling). */
  halt(): void
  /** Settles when the source closed on its own (connection closed, consumer deleted). */
  sourceClosed?: Promise<unknown>
  signal?: AbortSignal
}

/**
 * Wraps a nats.js iterator. nats.js settles `closed` of a stopped iterator only
 * when someone iterates again, so `closed` here does not wait for that: it
 * resolves as soon as `stop()` ran, the signal aborted, or the source closed.
 */
export function liveIterable<S, T>(source: AsyncIterable<S>, options: LiveIterableOptions<S, T>): LiveIterable<T> {
  let ended!: () => void
  const closed = new Promise<void>((resolve) => (ended = resolve))
  void options.sourceClosed?.then(ended, ended)
  let stopped = false

  async function* run(): AsyncGenerator<T> {
    try {
      for await (const item of source) {
        const value = options.map(item)
        if (value !== undefined) yield value
      }
    } finally {
      await stop()
    }
  }
  const iterator = run()
  const onAbort = (): void => void stop()

  async function stop(): Promise<void> {
    if (stopped) return
    stopped = true
    options.signal?.removeEventListener('abort', onAbort)
    options.halt()
    void iterator.return(undefined)
    ended()
  }

  options.signal?.addEventListener('abort', onAbort, { once: true })
  if (options.signal?.aborted) void stop()
  return { [Symbol.asyncIterator]: () => iterator, stop, closed }
}
