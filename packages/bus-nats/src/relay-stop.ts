import { type Logger, errorFields } from './logger.ts'

export interface RelayStopOptions {
  /** The relay's name, for the log. */
  relay: string
  /** How long the stop's last drain may go on (RelayOptions.stopDrainMs); 0: none. */
  drainMs: number
  logger: Logger
}

/**
 * A relay's graceful stop (see Relay.stop): the request, which ends the
 * relay's loops and aborts its waits, and the stop's last drain, which
 * publishes what was committed before the request for at most `drainMs`
 * before the relay lets go of its lease.
 */
export class RelayStop {
  readonly #o: RelayStopOptions
  readonly #abort = new AbortController()
  #requested = false
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

  request(): void {
    this.#requested = true
    this.#abort.abort()
  }

  /**
   * Whether a drain must start no further batch: once stopping, after the
   * batch in flight, and in the stop's last drain, past its deadline.
   */
  get drainOver(): boolean {
    return this.#requested && performance.now() >= this.#drainUntil
  }

  /**
   * Runs `drain` as the stop's last drain, for at most `drainMs` (the caller makes it ask for the exact horizon:
   * another database's transaction must not hold it back): what was committed before `stop()` is published now.
   * A failure ends it, not the stop.
   */
  async lastDrain(drain: () => Promise<void>): Promise<void> {
    if (this.#o.drainMs === 0) return
    this.#drainUntil = performance.now() + this.#o.drainMs
    try {
      await drain()
    } catch (err) {
      this.#o.logger.warn(
        { relay: this.#o.relay, ...errorFields(err) },
        'relay stopping: its last drain failed; the next active relay publishes the rest',
      )
    }
  }
}
