/**
 * `work`, given up when `signal` aborts first: rejects then with `reason()` (default the signal's reason), and
 * `work` goes on unawaited (its failure ignored). How a stop ends a step it cannot cancel (a JetStream request,
 * seconds while the server stalls; a read waiting on a lock) at once: the relay's stop at its deadline
 * (RelayStop.bounded), a runner's stop on its live source's `prepare`. The connection's close, or the statement's
 * cancel, ends the abandoned work.
 */
export function unlessAborted<T>(
  work: Promise<T>,
  signal: AbortSignal,
  reason: () => unknown = () => signal.reason,
): Promise<T> {
  work.catch(() => {})
  if (signal.aborted) return Promise.reject(reason())
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(reason())
    signal.addEventListener('abort', onAbort, { once: true })
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}
