import { setTimeout as sleep } from 'node:timers/promises'
import { isUnavailableError } from '@eventplane/core'
import { type EventplaneMetrics, type Logger, errorFields } from '@eventplane/bus-nats'
import type { LiveDelivery } from '../live-source.ts'

/** What the waits of one controller runner share (see DependencyWait). */
export interface DependencyWaitOptions {
  controller: string
  /** The runner's stop: a wait's sleep ends at once. */
  signal: AbortSignal
  log: Logger
  metrics: EventplaneMetrics | undefined
  /** First retry delay, doubled up to `maxRetryDelayMs`; a failed step's nak asks for `maxRetryDelayMs`. */
  retryDelayMs: number
  maxRetryDelayMs: number
}

/**
 * A delivery's wait for an unavailable dependency (PostgreSQL or NATS, core `isUnavailableError`): counted in
 * the waiting gauge from the first failure until `done`, retried with backoff (the delivery's ack wait extended,
 * so it is not handed to another worker meanwhile), logged by ids and code. A passing outage is not the event's
 * fault: nothing counts toward the runner's `maxAttempts`.
 */
export class DependencyWait {
  readonly #o: DependencyWaitOptions
  readonly #ids: Record<string, unknown>
  #waits = 0
  #counted = false

  /** `ids` label every log line of this wait (controller, event id, type …; never data). */
  constructor(options: DependencyWaitOptions, ids: Record<string, unknown>) {
    this.#o = options
    this.#ids = ids
  }

  /** One more try after a delay: `err` made `d` wait (`message` says during what). */
  async retry(d: LiveDelivery, err: unknown, message: string): Promise<void> {
    const { metrics, retryDelayMs, maxRetryDelayMs } = this.#o
    const labels = { controller: this.#o.controller }
    if (!this.#counted) metrics?.runtime.controllerWaiting.inc(labels)
    this.#counted = true
    const delay = Math.min(retryDelayMs * 2 ** Math.min(this.#waits++, 30), maxRetryDelayMs)
    metrics?.runtime.controllerRetries.inc(labels)
    this.#o.log.warn({ ...this.#ids, waits: this.#waits, retry_in_ms: delay, ...errorFields(err) }, message)
    d.working?.()
    await sleep(delay, undefined, { signal: this.#o.signal }).catch(() => {})
  }

  /** The dependency answered (or the delivery's handling ended): no longer counted as waiting. */
  done(): void {
    if (this.#counted) this.#o.metrics?.runtime.controllerWaiting.dec({ controller: this.#o.controller })
    this.#counted = false
    this.#waits = 0
  }

  /**
   * `step` (a read or a record in PostgreSQL before a reconcile, `what` in its log lines); while PostgreSQL
   * is unavailable the delivery is held and `step` called again, nothing counted. Undefined when stopped,
   * or after another failure (logged; the delivery is nak'ed to come back later).
   */
  async beforeReconcile<T>(
    d: LiveDelivery,
    what: { doing: string; do: string },
    step: () => Promise<T>,
  ): Promise<{ value: T } | undefined> {
    const { signal } = this.#o
    while (!signal.aborted) {
      try {
        return { value: await step() }
      } catch (err) {
        if (signal.aborted) return undefined
        if (isUnavailableError(err)) {
          await this.retry(d, err, `${what.doing} waits for an unavailable dependency, retrying (not counted)`)
          continue
        }
        this.#o.log.error(
          { controller: this.#o.controller, event_id: d.event.event_id, ...errorFields(err) },
          `could not ${what.do}, will retry`,
        )
        d.nak(this.#o.maxRetryDelayMs)
        return undefined
      }
    }
    return undefined
  }
}
