import type { RelayLease } from '@eventplane/store-pg'
import { type Logger, errorFields } from './logger.ts'
import type { OrderedPublisher } from './relay-publisher.ts'
import type { StopWaits } from './server-wait.ts'
import { settlesWithin } from './settles-within.ts'
import { unlessAborted } from './unless-aborted.ts'

export interface RelayStopOptions {
  /** The relay's name, for the log. */
  relay: string
  /** How long a stop may go on publishing (RelayOptions.stopDrainMs); 0: not at all. */
  drainMs: number
  /** The relay's publisher: what it still waits for at the deadline is abandoned. */
  publisher: Pick<OrderedPublisher, 'abandon' | 'inFlight'>
  logger: Logger
}

/**
 * How long a stop may take after its drain's deadline (`stopDrainMs`): storing
 * the last checkpoint (at most STOP_CHECKPOINT_MS of it), then releasing the
 * lease and ending LISTEN. So `stop()` resolves at most `stopDrainMs` + this
 * after the call, whatever NATS or PostgreSQL do.
 */
export const RELAY_STOP_GRACE_MS = 2000
/** The share of RELAY_STOP_GRACE_MS the last checkpoint write may take; the lease release has the rest. */
export const STOP_CHECKPOINT_MS = 1000

/**
 * What an abandoned publish fails with (see RelayStop): the stop's deadline
 * passed before its ack came. Also what `bounded` rejects with: a step still in
 * flight at the deadline (a JetStream API request, a PostgreSQL statement).
 */
export class StopDeadlinePassed extends Error {}

/**
 * A relay's graceful stop (see Relay.stop): the request, which ends the
 * relay's loops and aborts its waits; the stop's last drain, which publishes
 * what was committed before the request; and the deadline, `drainMs` after
 * the request, which bounds both: no batch starts past it, the publishes
 * still waiting for their acks then are abandoned (see
 * OrderedPublisher.abandon), and every other step the relay takes through
 * `bounded` (a JetStream API request: the stream check, the resume's read of
 * the stream's last message, a start; a read of the log; the lease check; a
 * standby's try for the lease) is
 * given up: the relay stops waiting for it (what it would have done is done by
 * the next active relay, which starts over). An abandoned publish is not in
 * the acked prefix, so the checkpoint stays before it: the next active relay
 * resumes after the stream's last message (see resumePoint) and publishes it
 * again if the stream does not hold it (JetStream drops a copy it holds, by
 * `Nats-Msg-Id`). After the deadline come the PostgreSQL steps, within
 * RELAY_STOP_GRACE_MS (`graceLeft`): the last checkpoint (skipped past
 * STOP_CHECKPOINT_MS, as a crash skips it: the next relay resumes after the
 * stream's last message), then the lease's release (past the bound its statement is cancelled and its
 * session ended, which frees the lease as well). So `stop()` resolves within
 * `drainMs` + RELAY_STOP_GRACE_MS, however long NATS keeps an ack or a reply
 * and PostgreSQL a lock.
 */
export class RelayStop {
  readonly #o: RelayStopOptions
  readonly #abort = new AbortController()
  /** Aborted at the deadline: `bounded` steps are given up. */
  readonly #passed = new AbortController()
  #requested = false
  /** The drain's bound of this stop (request()). */
  #drainMs: number
  /** The process's stop this one is part of (request()), if any. */
  #waits: Pick<StopWaits, 'ms' | 'stalled'> | undefined
  /** performance.now() at the deadline; set by request(). */
  #deadline = Number.POSITIVE_INFINITY
  #timer: NodeJS.Timeout | undefined
  /** While stopping, drains go on until then (performance.now()): the stop's last drain (see lastDrain). */
  #drainUntil = Number.NEGATIVE_INFINITY
  /** The relay's requests to the NATS server in flight (see onServer). */
  #serverRequests = 0

  constructor(options: RelayStopOptions) {
    this.#o = options
    this.#drainMs = options.drainMs
  }

  /** True once `stop()` was called: the relay's loops end. */
  get requested(): boolean {
    return this.#requested
  }

  /** Aborted when the stop is requested: the relay's sleeps and waits end at once. */
  get signal(): AbortSignal {
    return this.#abort.signal
  }

  /**
   * Starts the stop and its deadline (once): `drainMs` after now. As one of a process's `waits` (see StopWaits),
   * the drain is one of its waits for the server: it gets `waits.ms(drainMs)` (less once the server did not
   * answer an earlier one), and publishes still unacked at its deadline, or a request to the server still in
   * flight then (see onServer: a stop while the relay starts), mark the process's stop stalled, so the waits
   * after it (the connections' drains) do not wait for that server in full again.
   */
  request(waits?: Pick<StopWaits, 'ms' | 'stalled'>): void {
    if (this.#requested) return
    this.#requested = true
    this.#waits = waits
    this.#drainMs = Math.max(0, waits === undefined ? this.#o.drainMs : waits.ms(this.#o.drainMs))
    this.#deadline = performance.now() + this.#drainMs
    this.#timer = setTimeout(() => this.#abandon(), this.#drainMs)
    this.#timer.unref()
    this.#abort.abort()
  }

  /** The relay has stopped: the deadline has nothing left to abandon. */
  done(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /**
   * `p`, unless the stop's deadline passes first: then a StopDeadlinePassed
   * naming `step` (`p` goes on unobserved, its outcome dropped). Before a stop
   * and without one, just `p`.
   */
  bounded<T>(p: Promise<T>, step: string): Promise<T> {
    return unlessAborted(
      p,
      this.#passed.signal,
      () => new StopDeadlinePassed(`${step} was still in flight at the stop's deadline`),
    )
  }

  /**
   * `p`, a request to the NATS server (a JetStream API call: the account and stream checks, the resume's read of
   * the stream's last message), counted while in flight: one the server has not answered by the stop's deadline
   * marks the process's stop stalled, as a publish not acked by then does (see request()). Returns `p`.
   */
  onServer<T>(p: Promise<T>): Promise<T> {
    this.#serverRequests++
    const answered = (): void => {
      this.#serverRequests--
    }
    p.then(answered, answered)
    return p
  }

  /** `pages`, each page read through `bounded`; given up, the read is closed once its page in flight comes. */
  async *pages<T>(pages: AsyncIterable<T>): AsyncGenerator<T> {
    const it = pages[Symbol.asyncIterator]()
    let ended = false
    try {
      for (;;) {
        const next = await this.bounded(it.next(), 'a read of the log')
        if (next.done === true) {
          ended = true
          return
        }
        yield next.value
      }
    } finally {
      if (!ended) it.return?.(undefined).catch(() => {})
    }
  }

  /** Once stopping: ms left of the stop's grace (RELAY_STOP_GRACE_MS after the deadline), at least 0; else undefined. */
  graceLeft(): number | undefined {
    if (!this.#requested) return undefined
    return Math.max(0, Math.ceil(this.#deadline + RELAY_STOP_GRACE_MS - performance.now()))
  }

  /**
   * Waits for `p` to settle, once stopping for at most `ms` and not past the
   * grace (see graceLeft): true when it settled in time (its outcome is the
   * caller's), false when not (it goes on unobserved). Never throws.
   */
  settles(p: Promise<unknown>, ms = Number.POSITIVE_INFINITY): Promise<boolean> {
    const left = this.graceLeft()
    return settlesWithin(p, left === undefined ? Number.POSITIVE_INFINITY : Math.min(ms, left))
  }

  /**
   * Whether a drain must start no further batch: once stopping, after the
   * batch in flight, and in the stop's last drain, past the deadline.
   */
  get drainOver(): boolean {
    return this.#requested && performance.now() >= this.#drainUntil
  }

  /**
   * Runs `drain` as the stop's last drain, until the deadline (the caller makes it ask for the exact horizon:
   * another database's transaction must not hold it back): what was committed before `stop()` is published now.
   * A failure ends it, not the stop.
   */
  async lastDrain(drain: () => Promise<void>): Promise<void> {
    if (performance.now() >= this.#deadline) return
    this.#drainUntil = this.#deadline
    try {
      await drain()
    } catch (err) {
      this.#o.logger.warn(
        { relay: this.#o.relay, ...errorFields(err) },
        err instanceof StopDeadlinePassed
          ? "relay stopping: its last drain was cut at the stop's deadline; the next active relay publishes the rest"
          : 'relay stopping: its last drain failed; the next active relay publishes the rest',
      )
    }
  }

  /**
   * The stop's last checkpoint write (`stored`, the writer's flush), given STOP_CHECKPOINT_MS of the grace: past
   * it, the lease's statement is cancelled and the write skipped (logged with `where`: positions only). Safe: the
   * stored checkpoint only ever trails the stream, and the next active relay resumes after the stream's last
   * message (see resumePoint), so it republishes nothing and skips nothing either way. Throws a write's failure.
   */
  async storeLastCheckpoint(stored: Promise<void>, lease: Pick<RelayLease, 'cancel'>, where: object): Promise<void> {
    if (await this.settles(stored, STOP_CHECKPOINT_MS)) return stored
    lease.cancel()
    this.#o.logger.warn(
      { relay: this.#o.relay, ...where, bound_ms: STOP_CHECKPOINT_MS },
      "relay stopping: the checkpoint was not stored in time and is skipped; the next relay resumes after the stream's last message",
    )
  }

  /**
   * Releases the lease and ends its session; once stopping, within what is left of the grace, else the release
   * is cancelled and skipped: the session's end frees the lease as well (see RelayLease), the standby takes it at
   * its next try.
   */
  async closeLease(lease: Pick<RelayLease, 'close'>): Promise<void> {
    const timeoutMs = this.graceLeft()
    const outcome = await lease.close(timeoutMs === undefined ? {} : { timeoutMs })
    if (outcome === 'timed_out')
      this.#o.logger.warn(
        { relay: this.#o.relay, grace_left_ms: timeoutMs },
        'relay stopping: the lease was not released in time; its session was ended instead, which frees the lease',
      )
    else if (outcome === 'failed')
      this.#o.logger.info(
        { relay: this.#o.relay },
        'relay stopping: the lease release failed; its session was ended, which frees the lease if it held it',
      )
  }

  #abandon(): void {
    this.#timer = undefined
    this.#passed.abort()
    const { publisher, relay } = this.#o
    const drainMs = this.#drainMs
    const abandoned = publisher.inFlight
    // The server did not ack them, or answer a request, in time: taken as not answering (see request()).
    if (abandoned > 0 || this.#serverRequests > 0) this.#waits?.stalled()
    publisher.abandon(new StopDeadlinePassed(`the relay stopped ${drainMs} ms after stop() without these acks`))
    if (abandoned > 0)
      this.#o.logger.warn(
        { relay, abandoned, stop_drain_ms: drainMs },
        'relay stopping: publishes not acked by the deadline are abandoned, not checkpointed; ' +
          'the next active relay publishes what the stream lacks',
      )
  }
}
