import { type Msg, type NatsConnection, type Subscription, createInbox } from '@nats-io/transport-node'
import {
  SpanKind,
  TRACEPARENT_HEADER,
  eventParentContext,
  startEventSpan,
  traceparentOf,
  tracerInstalled,
} from './ops/trace-context.ts'
import { EXPECTED_LAST_MSG_ID, readPubAck } from './pub-ack.ts'
import type { RelayMessage } from './relay-encode.ts'
import { JS_API, connectionClosed, isJsApiError, publishTimedOut, refusedPublish } from './nats-errors.ts'

/** What the publisher has seen acked since the last `resetChain`. */
export interface AckedPrefix {
  /** The last event of the acked prefix: it and everything sent before it are in the stream. */
  last: RelayMessage | undefined
  /** Events in the acked prefix (duplicates included). */
  acked: number
  /** Acks within it that said the stream already held the event. */
  duplicates: number
}

export interface OrderedPublisherOptions {
  /** Un-acked publishes allowed at once. */
  maxInFlight: number
  /** How long a publish may wait for its ack before it fails (and breaks the run). */
  timeoutMs: number
  /** The stream that must ack every publish. */
  stream: string
}

const PENDING = 0
const ACKED = 1
const DUPLICATE = 2
const FAILED = 3

/**
 * Publishes events in log order as one continuous stream of publishes with a
 * bounded window of un-acked ones, each with `Nats-Msg-Id = event_id`. Within
 * one unbroken run every publish also carries `Nats-Expected-Last-Msg-Id` =
 * the previous event's id, so the stream can only store an event right after
 * its predecessor: when the connection drops, a publish lost on the dead
 * socket can never be overtaken by later ones the client buffered and
 * flushed on reconnect. The first publish of a run expects the tip given to
 * `resetChain` (the relay's last acked event), or nothing when none is known
 * (an empty stream, one whose messages all aged out). JetStream checks the
 * duplicate id before the expectation, so republishing stored events after a
 * failed publish yields duplicate acks, not errors.
 *
 * An asynchronous JetStream publisher of its own (like the Go client's
 * `PublishAsync`), not nats.js `js.publish`, which is a request that builds
 * three `Error`s with stack traces per publish (a third of the relay's CPU):
 * a core publish with a reply subject `<inbox>.<send number>` under one
 * wildcard subscription on the connection's own inbox prefix (the grant the
 * relay's requests already use, so no new permission), acks matched by that
 * number, one timer for every deadline (sends are in order, so the oldest
 * pending one expires first). A publish fails on a JetStream error in its ack,
 * no responders (no stream takes the subject, JetStream down), no ack within
 * `timeoutMs`, a closed connection, or a permission refusal of its subject or
 * of the reply subscription.
 *
 * Acks may arrive in any order; only the acked *prefix* counts (`prefix`),
 * which is what the relay may checkpoint. The first failure stops further
 * sends and breaks the run; the publishes already sent still settle (ack,
 * error or timeout) before `settle` resolves.
 */
export class OrderedPublisher {
  readonly #nc: NatsConnection
  readonly #maxInFlight: number
  readonly #timeoutMs: number
  readonly #stream: string
  /** Free slots `slot()` waits for: an eighth of the window. */
  readonly #refill: number
  /** `<inbox>.`: a publish's reply subject is this plus its send number. */
  readonly #replyPrefix: string
  #sub: Subscription | undefined
  #status: { stop?: () => void } | undefined
  #timer: NodeJS.Timeout | undefined
  #closed = false
  #tip: string | undefined
  /** Sent and not yet in the acked prefix, in send order, with their ack state and send time. */
  #queue: RelayMessage[] = []
  #state: number[] = []
  #sentAt: number[] = []
  /** Index in #queue of the first event not in the acked prefix. */
  #head = 0
  /** Send number of #queue[0]. */
  #base = 0
  #sent = 0
  #inFlight = 0
  #slotFreed: (() => void) | undefined
  #failure: { error: unknown } | undefined
  /** Set by `abandon`: every run fails with it from then on. */
  #abandoned: { error: unknown } | undefined
  #prefix: AckedPrefix = { last: undefined, acked: 0, duplicates: 0 }

  constructor(nc: NatsConnection, options: OrderedPublisherOptions) {
    this.#nc = nc
    this.#maxInFlight = options.maxInFlight
    this.#timeoutMs = options.timeoutMs
    this.#stream = options.stream
    this.#refill = Math.max(1, Math.floor(options.maxInFlight / 8))
    // nats.js keeps the connection's inbox prefix (option `inboxPrefix`, default `_INBOX`) on its options.
    const inboxPrefix = (nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix
    this.#replyPrefix = `${createInbox(inboxPrefix)}.`
  }

  /**
   * Starts a new run: the next publish expects `tip` (the event id of the
   * stream's last message, when the caller knows it; no expectation
   * otherwise), and the acked prefix starts empty. Call before
   * (re)publishing from a checkpoint, only when nothing is in flight (after
   * `settle`).
   */
  resetChain(tip?: string): void {
    this.#tip = tip
    this.#queue = []
    this.#state = []
    this.#sentAt = []
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

  /** Whether `abandon` was called: no publish is sent any more. */
  get abandoned(): boolean {
    return this.#abandoned !== undefined
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
   * (and sends nothing) once the run has failed or the publisher was abandoned.
   */
  send(m: RelayMessage): boolean {
    if (this.#abandoned !== undefined) this.#failure ??= this.#abandoned
    if (this.#failure !== undefined) return false
    if (this.#inFlight >= this.#maxInFlight) throw new Error('OrderedPublisher.send: the window is full')
    if (this.#closed) throw new Error('OrderedPublisher.send: the publisher is closed')
    this.#sub ??= this.#open()
    const expectLast = this.#tip
    this.#tip = m.event.event_id
    const seq = this.#sent++
    this.#queue.push(m)
    this.#state.push(PENDING)
    this.#sentAt.push(performance.now())
    this.#inFlight++
    this.#timer ??= setTimeout(() => this.#expire(), this.#timeoutMs)
    try {
      this.#publish(m, expectLast, seq)
    } catch (e) {
      this.#settle(seq, FAILED, e)
    }
    return true
  }

  /** Resolves when every publish sent so far has been acked or has failed. Never throws. */
  async settle(): Promise<void> {
    while (this.#inFlight > 0) await this.slot()
  }

  /**
   * Stops waiting for acks: every pending publish fails with `error` now (an
   * ack that comes later settles nothing), so it is not in the acked prefix,
   * and no publish is sent after it (every run fails with `error`). What was
   * sent may still be stored by the stream: republished, it is a duplicate.
   */
  abandon(error: unknown): void {
    this.#abandoned ??= { error }
    this.#failPending(error)
  }

  /**
   * Ends the reply subscription and the watchers; publishes still pending fail.
   * Call once the relay stops; the publisher sends nothing after it.
   */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#failPending(connectionClosed())
    this.#sub?.unsubscribe()
    this.#status?.stop?.()
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** The reply subscription, and watchers for what no ack will ever report: a closed connection, a refused publish. */
  #open(): Subscription {
    const sub = this.#nc.subscribe(`${this.#replyPrefix}*`, {
      callback: (err, m) => (err === null ? this.#acked(m) : this.#failPending(err)),
    })
    this.#nc.closed().then(
      () => this.#failPending(connectionClosed()),
      () => {},
    )
    const status = this.#nc.status()
    this.#status = status as { stop?: () => void }
    ;(async () => {
      for await (const s of status) {
        // nats.js reports a refused publish only here (a request would get it; a plain publish has no one to tell).
        const refused = refusedPublish(s)
        if (refused !== undefined) this.#refused(refused.subject, refused.error)
      }
    })().catch(() => {})
    return sub
  }

  #acked(m: Msg): void {
    const seq = Number(m.subject.slice(this.#replyPrefix.length))
    const i = seq - this.#base
    // A late answer to a publish that timed out (or of an earlier run) settles nothing.
    if (!(i >= this.#head && i < this.#state.length) || this.#state[i] !== PENDING) return
    const subject = this.#queue[i]!.subject
    let duplicate: boolean
    try {
      duplicate = readPubAck(m, subject, this.#stream)
    } catch (e) {
      this.#settle(seq, FAILED, e)
      return
    }
    this.#settle(seq, duplicate ? DUPLICATE : ACKED, undefined)
  }

  /** The server refused a publish on `subject`: the first pending publish on it fails with that refusal. */
  #refused(subject: string, error: Error): void {
    for (let i = this.#head; i < this.#state.length; i++) {
      if (this.#state[i] === PENDING && this.#queue[i]!.subject === subject) {
        this.#settle(this.#base + i, FAILED, error)
        return
      }
    }
  }

  /** Fails every pending publish whose deadline passed, and re-arms the timer for the next one. */
  #expire(): void {
    this.#timer = undefined
    const now = performance.now()
    for (let i = this.#head; i < this.#state.length; i++) {
      if (this.#state[i] !== PENDING) continue
      const left = this.#sentAt[i]! + this.#timeoutMs - now
      if (left > 0) {
        this.#timer = setTimeout(() => this.#expire(), left + 1)
        return
      }
      this.#settle(this.#base + i, FAILED, publishTimedOut(this.#queue[i]!.subject))
    }
  }

  #failPending(error: unknown): void {
    for (let i = this.#head; i < this.#state.length; i++)
      if (this.#state[i] === PENDING) this.#settle(this.#base + i, FAILED, error)
  }

  #settle(seq: number, state: number, error: unknown): void {
    const i = seq - this.#base
    this.#state[i] = state
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
        this.#sentAt = this.#sentAt.slice(head)
        this.#base += head
        this.#head = 0
      }
    }
    if (--this.#inFlight === 0) {
      clearTimeout(this.#timer)
      this.#timer = undefined
    }
    if (this.#inFlight > this.#maxInFlight - this.#refill && this.#inFlight > 0 && this.#failure === undefined) return
    const wake = this.#slotFreed
    this.#slotFreed = undefined
    wake?.()
  }

  #publish(m: RelayMessage, expectLast: string | undefined, seq: number): void {
    // Straight into the header map: the event id came from a uuid column (see logHeaders).
    if (expectLast !== undefined) m.headers.headers.set(EXPECTED_LAST_MSG_ID, [expectLast])
    const reply = this.#replyPrefix + seq
    // Without an SDK the publish span would be a non-recording span carrying the event's own span context,
    // whose traceparent relayMessage already put in the headers: nothing to start.
    if (!tracerInstalled()) {
      this.#nc.publish(m.subject, m.bytes, { reply, headers: m.headers })
      return
    }
    // The relay reads events from PostgreSQL, where no trace context is stored: each publish hangs under the
    // event's own span context (trace id = correlation id, see eventSpanContext), so consumers join that trace.
    const span = startEventSpan(
      'eventplane publish',
      SpanKind.PRODUCER,
      m.event,
      eventParentContext(m.event, undefined),
    )
    try {
      const traceparent = traceparentOf(span)
      if (traceparent !== undefined) m.headers.set(TRACEPARENT_HEADER, traceparent)
      this.#nc.publish(m.subject, m.bytes, { reply, headers: m.headers })
    } finally {
      span.end()
    }
  }
}

/** The stream refused a publish because its predecessor is not the stream's last message: republish from the checkpoint. */
export function isOrderBreak(e: unknown): boolean {
  return isJsApiError(e, JS_API.wrongLastMsgId)
}
