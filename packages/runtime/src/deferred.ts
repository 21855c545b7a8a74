/** `Promise.withResolvers` for Node 20. */
export interface Deferred<T> {
  promise: Promise<T>
  resolve(value: T): void
  reject(reason: unknown): void
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (reason: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/**
 * `work`, given up when `signal` aborts first: rejects then with the signal's reason, and `work` goes on
 * unawaited (its failure ignored). A runner's `stop()` so ends a step it cannot cancel (a live source's
 * `prepare`: a JetStream request, seconds while the server stalls) at once, as the relay's stop does its
 * requests (RelayStop.bounded); the connection's close ends the abandoned request.
 */
export function unlessAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  work.catch(() => {})
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}
