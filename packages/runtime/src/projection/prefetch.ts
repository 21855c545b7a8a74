/**
 * Iterates `source` one item ahead: the next batch is being fetched while the
 * caller works on the current one. At most one extra item is held in memory.
 */
export async function* prefetch<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]()
  let next = it.next()
  try {
    for (;;) {
      const r = await next
      if (r.done) return
      next = it.next()
      // A rejection of the look-ahead is re-thrown when awaited; until then it must not count as unhandled.
      next.catch(() => {})
      yield r.value
    }
  } finally {
    // Let the source release its connection; its own errors after our stop do not matter.
    await next
      .then(
        () => it.return?.(),
        () => undefined,
      )
      .catch(() => undefined)
  }
}
