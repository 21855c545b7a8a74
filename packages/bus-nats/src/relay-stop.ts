import { type Logger, errorFields } from './logger.ts'
import type { OrderedPublisher } from './relay-publisher.ts'

export interface RelayStopOptions {
  /** The relay's name, for the log. */
  relay: string
  /** How long a stop may go on publishing (RelayOptions.stopDrainMs); 0: not at all. */
  drainMs: number
  /** The relay's publisher: what it still waits for at the deadline is abandoned. */
  publisher: Pick<OrderedPublisher, 'abandon' | 'inFlight'>
  logger: Logger
}

/** What an abandoned publish fails with (see RelayStop): the stop's deadline passed before its ack came. */
class StopDeadlinePassed extends Error {}

/**
 * A relay's graceful stop (see Relay.stop): the request, which ends the
 * relay's loops and aborts its waits; the stop's last drain, which publishes
 * what was committed before the request; and the deadline, `drainMs` after
 * the request, which bounds both: no batch starts past it, and the publishes
 * still waiting for their acks then are abandoned (see
 * OrderedPublisher.abandon). An abandoned publish is not in the acked prefix,
 * so the checkpoint stays before it: the next active relay resumes after the
 * stream's last message (see resumePoint) and publishes it again if the
 * stream does not hold it (JetStream drops a copy it holds, by `Nats-Msg-Id`).
 * So `stop()` takes about `drainMs`, plus storing the checkpoint and
 * releasing the lease, however long NATS keeps an ack (up to
 * `publishTimeoutMs` before). Not bounded here: a JetStream API request in
 * flight at the stop (a stream check, a start) runs to its own timeout.
 */
export class RelayStop {
  readonly #o: RelayStopOptions
  readonly #abort = new AbortController()
  #requested = false
  /** performance.now() at the deadline; set by request(). */
  #deadline = Number.POSITIVE_INFINITY
  #timer: NodeJS.Timeout | undefined
  /** While stopping, drains go on until then (performance.now()): the stop's last drain (see lastDrain). */
  #drainUntil = Number.NEGATIVE_INFINITY

  constructor(options: RelayStopOptions) {
    this.#o = options
  }

  /** True once `stop()` was called: the relay's loops end. */
  get requested(): boolean {
    return this.#requested
  }

  /** Aborted when the stop is requested: the relay's sleeps and waits end at once. */
  get signal(): AbortSignal {
    return this.#abort.signal
  }

  /** Starts the stop and its deadline (once). */
  request(): void {
    if (this.#requested) return
    this.#requested = true
    this.#deadline = performance.now() + this.#o.drainMs
    this.#timer = setTimeout(() => this.#abandon(), this.#o.drainMs)
    this.#timer.unref()
    this.#abort.abort()
  }

  /** The relay has stopped: the deadline has nothing left to abandon. */
  done(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
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
        'relay stopping: its last drain failed; the next active relay publishes the rest',
      )
    }
  }

  #abandon(): void {
    this.#timer = undefined
    const { publisher, relay, drainMs } = this.#o
    const abandoned = publisher.inFlight
    publisher.abandon(new StopDeadlinePassed(`the relay stopped ${drainMs} ms after stop() without these acks`))
    if (abandoned > 0)
      this.#o.logger.warn(
        { relay, abandoned, stop_drain_ms: drainMs },
        'relay stopping: publishes not acked by the deadline are abandoned, not checkpointed; ' +
          'the next active relay publishes what the stream lacks',
      )
  }
}
