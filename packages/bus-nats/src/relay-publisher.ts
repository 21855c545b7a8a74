import type { JetStreamClient } from '@nats-io/jetstream'
import { SpanKind, TRACEPARENT_HEADER, eventParentContext, startEventSpan, traceparentOf } from './ops/trace-context.ts'
import type { RelayMessage } from './relay-encode.ts'
import { JS_API, isJsApiError } from './nats-errors.ts'

/** JetStream API error: `Nats-Expected-Last-Msg-Id` did not match the stream's last message (nats-server errors.json). */

/** What the publisher has seen acked since the last `resetChain`. */
export interface AckedPrefix {
  /** The last event of the acked prefix: it and everything sent before it are in the stream. */
  last: RelayMessage | undefined
  /** Events in the acked prefix (duplicates included). */
  acked: number
  /** Acks within it that said the stream already held the event. */
  duplicates: number
}

const PENDING = 0
const ACKED = 1
const DUPLICATE = 2
const FAILED = 3

/**
 * Publishes events in log order as one continuous stream of publishes with a
 * bounded window of un-acked ones (like an async publish with `maxInFlight`
 * outstanding: the window stays full across the relay's read batches instead
 * of draining at each batch end), each with `Nats-Msg-Id = event_id`. Within
 * one unbroken run every publish also carries `Nats-Expected-Last-Msg-Id` =
 * the previous event's id, so the stream can only store an event right after
 * its predecessor: when the connection drops, a publish lost on the dead
 * socket can never be overtaken by later ones the client buffered and
 * flushed on reconnect. The first publish of a run carries no expectation
 * (everything before it is acked). JetStream checks the duplicate id before
 * the expectation, so republishing stored events after a crash yields
 * duplicate acks, not errors.
 *
 * Acks may arrive in any order; only the acked *prefix* counts (`prefix`),
 * which is what the relay may checkpoint. The first failure stops further
 * sends and breaks the run.
 */
export class OrderedPublisher {
  readonly #js: JetStreamClient
  readonly #maxInFlight: number
  readonly #timeoutMs: number
  /** Free slots `slot()` waits for: an eighth of the window. */
  readonly #refill: number
  #tip: string | undefined
  /** Sent and not yet in the acked prefix, in send order, with their ack state. */
  #queue: RelayMessage[] = []
  #state: number[] = []
  /** Index in #queue of the first event not in the acked prefix. */
  #head = 0
  /** Send sequence number of #queue[0]. */
  #base = 0
  #sent = 0
  #inFlight = 0
  #slotFreed: (() => void) | undefined
  #failure: { error: unknown } | undefined
  #prefix: AckedPrefix = { last: undefined, acked: 0, duplicates: 0 }

  constructor(js: JetStreamClient, maxInFlight: number, timeoutMs: number) {
    this.#js = js
    this.#maxInFlight = maxInFlight
    this.#timeoutMs = timeoutMs
    this.#refill = Math.max(1, Math.floor(maxInFlight / 8))
  }

  /**
   * Starts a new run: the next publish carries no expectation, and the acked
   * prefix starts empty. Call before (re)publishing from a checkpoint, only
   * when nothing is in flight (after `settle`).
   */
  resetChain(): void {
    this.#tip = undefined
    this.#queue = []
    this.#state = []
    this.#head = 0
    this.#base = this.#sent
    this.#failure = undefined
    this.#prefix = { last: undefined, acked: 0, duplicates: 0 }
  }

  /** The acked prefix of this run so far. */
  get prefix(): Readonly<AckedPrefix> {
    return this.#prefix
  }

  /** Whether a publish of this run failed (no further publish is sent after it). */
  get failed(): boolean {
    return this.#failure !== undefined
  }

  /** The first failure of this run, if any (no further publish is sent after it). */
  get failure(): unknown {
    return this.#failure?.error
  }

  /** The event the failure stopped at: the first one sent and not acked. */
  get stuck(): RelayMessage | undefined {
    return this.#failure === undefined ? undefined : this.#queue[this.#head]
  }

  /** Publishes sent and not yet acked or failed. */
  get inFlight(): number {
    return this.#inFlight
  }

  /** True while `maxInFlight` publishes are un-acked: wait for `slot()` before the next `send`. */
  get full(): boolean {
    return this.#inFlight >= this.#maxInFlight && this.#failure === undefined
  }

  /**
   * Resolves when at least `refill` slots are free (or the run failed, or
   * nothing is in flight). Refilling the window in bursts rather than one
   * publish per ack lets nats.js write a burst in one socket write.
   */
  slot(): Promise<void> {
    return new Promise<void>((resolve) => (this.#slotFreed = resolve))
  }

  /**
   * Sends `m` after the ones sent before it, synchronously (nats.js writes
   * every publish of one tick in one socket write; awaiting between publishes
   * would write them one by one). Call only when not `full`. Returns false
   * (and sends nothing) once the run has failed.
   */
  send(m: RelayMessage): boolean {
    if (this.#failure !== undefined) return false
    if (this.#inFlight >= this.#maxInFlight) throw new Error('OrderedPublisher.send: the window is full')
    const expectLast = this.#tip
    this.#tip = m.event.event_id
    const seq = this.#sent++
    this.#queue.push(m)
    this.#state.push(PENDING)
    this.#inFlight++
    this.#publish(m, expectLast).then(
      (duplicate) => this.#settled(seq, duplicate ? DUPLICATE : ACKED, undefined),
      (e: unknown) => this.#settled(seq, FAILED, e),
    )
    return true
  }

  /** Resolves when every publish sent so far has been acked or has failed. Never throws. */
  async settle(): Promise<void> {
    while (this.#inFlight > 0) await this.slot()
  }

  #settled(seq: number, state: number, error: unknown): void {
    const i = seq - this.#base
    // A publish of a run that was reset meanwhile cannot happen (reset only after settle), but never index wrongly.
    if (i >= 0) this.#state[i] = state
    if (state === FAILED) {
      this.#failure ??= { error }
      this.#tip = undefined
    }
    // Advance the acked prefix over every settled ack at its end.
    const queue = this.#queue
    const states = this.#state
    let head = this.#head
    let { last, acked, duplicates } = this.#prefix
    while (head < queue.length && states[head]! !== PENDING && states[head]! !== FAILED) {
      last = queue[head]!
      acked++
      if (states[head] === DUPLICATE) duplicates++
      head++
    }
    if (head !== this.#head) {
      this.#prefix = { last, acked, duplicates }
      this.#head = head
      // Drop the acked front now and then, so a long drain does not keep every sent event.
      if (head >= 1024 && head * 2 >= queue.length) {
        this.#queue = queue.slice(head)
        this.#state = states.slice(head)
        this.#base += head
        this.#head = 0
      }
    }
    this.#inFlight--
    if (this.#inFlight > this.#maxInFlight - this.#refill && this.#inFlight > 0 && this.#failure === undefined) return
    const wake = this.#slotFreed
    this.#slotFreed = undefined
    wake?.()
  }

  async #publish(m: RelayMessage, expectLast: string | undefined): Promise<boolean> {
    // The relay reads events from PostgreSQL, where no trace context is stored: each publish hangs under the
    // event's own span context (trace id = correlation id, see eventSpanContext), so consumers join that trace.
    const span = startEventSpan(
      'eventplane publish',
      SpanKind.PRODUCER,
      m.event,
      eventParentContext(m.event, undefined),
    )
    const traceparent = traceparentOf(span)
    if (traceparent !== undefined) m.headers.set(TRACEPARENT_HEADER, traceparent)
    try {
      // Nats-Msg-Id is already among m.headers (relayMessage), so no msgID option: nats.js would set it again.
      const ack = await this.#js.publish(m.subject, m.bytes, {
        headers: m.headers,
        timeout: this.#timeoutMs,
        ...(expectLast === undefined ? {} : { expect: { lastMsgID: expectLast } }),
      })
      return ack.duplicate
    } finally {
      span.end()
    }
  }
}

/** The stream refused a publish because its predecessor is not the stream's last message: republish from the checkpoint. */
export function isOrderBreak(e: unknown): boolean {
  return isJsApiError(e, JS_API.wrongLastMsgId)
}
