import { setMaxListeners } from 'node:events'
import { type RecordedEvent, Unavailable, isEventplaneError } from '@eventplane/core'
import { SERVER_WAIT_MS, errorFields } from '@eventplane/bus-nats'

/** One event handed over by the bus; settle it exactly once. */
export interface LiveDelivery {
  event: RecordedEvent
  /** How many times the bus has delivered it (1 the first time). */
  deliveryCount: number
  redelivered: boolean
  ack(): void | Promise<void>
  /** Asks for redelivery, after `delayMs` when given. */
  nak(delayMs?: number): void
  /** Never deliver it again. */
  term(): void
  /** Extends the ack wait while a slow handler works. */
  working?(): void
  /** The W3C `traceparent` the relay sent with it, if any (see eventParentContext). */
  traceparent?: string | undefined
}

/**
 * Log fields of a failed ack: its code and message line, and how many times the bus sent it
 * (`ack_attempts`, from bus-nats's final ack error) when it says so. Ids only, never event data.
 */
export function ackFailureFields(e: unknown): { code?: string; err?: string; ack_attempts?: number } {
  const attempts = isEventplaneError(e) ? e.details.attempts : undefined
  return { ...errorFields(e), ...(typeof attempts === 'number' ? { ack_attempts: attempts } : {}) }
}

/**
 * Waits for `ack` (a delivery's, or a batch's together) like any other wait, until `signal` (the runner's stop)
 * aborts: from then on at most `graceMs` (bus-nats `SERVER_WAIT_MS`, what a stop waits for the server) more, then
 * resolves `'abandoned'`. An ack the server does not answer (a stalled server or path) is sent again for up to
 * ~25 s (bus-nats `resendAck`): a stop waiting for it overran the 10 s evtctl gives a SIGTERM. An abandoned ack
 * only means a redelivery, which the runners take (skipped by a projection's checkpoint, reconciled again by
 * a controller).
 */
export async function ackUnlessStopped<T>(
  ack: Promise<T>,
  signal: AbortSignal,
  graceMs = SERVER_WAIT_MS,
): Promise<T | 'abandoned'> {
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  const abandoned = new Promise<'abandoned'>((resolve) => {
    onAbort = () => {
      timer = setTimeout(resolve, graceMs, 'abandoned')
    }
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([ack, abandoned])
  } finally {
    clearTimeout(timer)
    if (onAbort) signal.removeEventListener('abort', onAbort)
  }
}

/**
 * A runner's stop: an AbortController whose signal any number of waits may watch at once (every ack in flight,
 * see {@link ackUnlessStopped}, and every retry's sleep) without node's "possible EventTarget memory leak"
 * warning past 10 listeners, which would send an operator looking for a leak that is not there.
 */
export function runnerStop(): AbortController {
  const stop = new AbortController()
  setMaxListeners(0, stop.signal)
  return stop
}

/** An open live subscription: deliveries in log order, until stopped. */
export interface LiveSubscription extends AsyncIterable<LiveDelivery> {
  stop(): Promise<void>
  /** Settles when the subscription ends. */
  closed: Promise<unknown>
}

/**
 * Where a runner's live events come from (JetStream in production, see
 * `jetStreamSource`). `prepare` creates or checks the durable consumer and is
 * called before the runner catches up from PostgreSQL, so that nothing
 * appended after the catch-up began is missed.
 */
export interface LiveSource {
  prepare(): Promise<void>
  open(signal: AbortSignal): Promise<LiveSubscription>
  /** Events waiting for this consumer (pending plus delivered and unacknowledged), for the lag gauge; optional. */
  pending?(): Promise<number>
  /**
   * The consumer's ack wait once `prepare` has run (the server's value, also for a consumer that existed):
   * a runner holding deliveries extends them well within it. Undefined when unknown.
   */
  ackWaitMs?(): number | undefined
  /**
   * True once the source can never deliver again: its connection was closed for good (the server closed it,
   * e.g. for revoked credentials, or it was closed under the runner). A runner then ends with
   * `bus.unavailable` instead of reopening forever; optional (a source without it is retried).
   */
  isClosed?(): boolean
}

/**
 * The error a runner ends with when its live source was closed for good (see `LiveSource.isClosed`):
 * `bus.unavailable`, the failure that made it notice as its cause. Its owner may ask the
 * connection why it was closed.
 */
export function liveSourceClosed(cause: unknown): Unavailable {
  return new Unavailable('bus.unavailable', "the live source's NATS connection was closed", { cause })
}

/**
 * Groups deliveries into batches: waits for one, then takes whatever else
 * arrives within `lingerMs` of it, up to `max`. The linger is a deadline from
 * the batch's first delivery, not a wait per delivery: with one per gap, a
 * steady stream faster than one per `lingerMs` (1k ev/s with 5 ms) would hold
 * the first event until `max` of them came. The pending read is carried over
 * between batches, never dropped.
 */
export async function* batchDeliveries<T>(
  source: AsyncIterable<T>,
  max: number,
  lingerMs: number,
): AsyncGenerator<T[]> {
  const it = source[Symbol.asyncIterator]()
  let pending: Promise<IteratorResult<T>> | undefined
  for (;;) {
    const first = await (pending ?? it.next())
    pending = undefined
    if (first.done) return
    const batch = [first.value]
    let done = false
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<'timeout'>((resolve) => (timer = setTimeout(resolve, lingerMs, 'timeout')))
    try {
      while (batch.length < max) {
        const next = it.next()
        const r = await Promise.race([next, deadline])
        if (r === 'timeout') {
          pending = next
          break
        }
        if (r.done) {
          done = true
          break
        }
        batch.push(r.value)
      }
    } finally {
      clearTimeout(timer)
    }
    yield batch
    if (done) return
  }
}
