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

  // A plain iterator, not an async generator around `for await`: that would add a generator resumption and
  // its promises per item on top of the source's own. Its caller awaits each `next()` before the next one
  // (as `for await` and the runtime's readers do), like any async iterator of a live feed.
  const source$ = source[Symbol.asyncIterator]()
  const done: IteratorReturnResult<undefined> = { done: true, value: undefined }
  const iterator: AsyncIterator<T, undefined> = {
    async next() {
      try {
        while (!stopped) {
          const r = await source$.next()
          if (r.done) break
          // An item that arrives after stop() is not handed out: un-acked, it is redelivered.
          if (stopped) break
          const value = options.map(r.value)
          if (value !== undefined) return { done: false, value }
        }
      } catch (e) {
        await stop()
        throw e
      }
      await stop()
      return done
    },
    async return() {
      await stop()
      return done
    },
  }
  const onAbort = (): void => void stop()

  async function stop(): Promise<void> {
    if (stopped) return
    stopped = true
    options.signal?.removeEventListener('abort', onAbort)
    options.halt()
    // Ends the source's iterator as `for await` would on leaving the loop (a pending read settles first).
    source$.return?.(undefined)?.catch(() => {})
    ended()
  }

  options.signal?.addEventListener('abort', onAbort, { once: true })
  if (options.signal?.aborted) void stop()
  return { [Symbol.asyncIterator]: () => iterator, stop, closed }
}
