import { EVENTS_CHANNEL, type Sql } from '@eventplane/store-pg'
import { type Logger, errorFields } from './logger.ts'
import { RELAY_TRACE } from './relay-trace.ts'

/** The channel PgEventStore notifies after appends commit (store-pg AppendNotifier). */
export { EVENTS_CHANNEL }

export type WakeReason = 'notified' | 'timeout' | 'aborted'

/**
 * Wakes a log reader when a writer says something was appended (LISTEN on the
 * channel PgEventStore notifies after its appends commit),
 * with a timeout as the polling fallback. Notifications that arrive while
 * nobody waits are remembered, so none is lost between a read and the next wait.
 */
export class LogWaker {
  readonly #sql: Sql
  readonly #logger: Logger
  #pending = false
  #wake: (() => void) | undefined
  #unlisten: (() => Promise<void>) | undefined

  constructor(sql: Sql, logger: Logger) {
    this.#sql = sql
    this.#logger = logger
  }

  /** Whether LISTEN is established (when not, only the polling fallback wakes readers). */
  get listening(): boolean {
    return this.#unlisten !== undefined
  }

  /**
   * (Re)establishes LISTEN. postgres.js re-listens after a dropped connection
   * but gives up silently if the server is still down then, so callers call
   * this again after recovering from a PostgreSQL outage. Never throws.
   */
  async listen(): Promise<void> {
    await this.unlisten()
    try {
      const meta = await this.#sql.listen(
        EVENTS_CHANNEL,
        () => {
          if (RELAY_TRACE.wake.hasSubscribers) RELAY_TRACE.wake.publish({ at: performance.now() })
          this.notify()
        },
        () => this.notify(),
      )
      this.#unlisten = () => meta.unlisten()
    } catch (e) {
      this.#logger.warn(errorFields(e), 'LISTEN failed; polling only until it can be re-established')
    }
  }

  async unlisten(): Promise<void> {
    const unlisten = this.#unlisten
    this.#unlisten = undefined
    if (unlisten === undefined) return
    try {
      await unlisten()
    } catch {
      // The listening connection is gone already.
    }
  }

  /** Wakes the current (or next) waiter. */
  notify(): void {
    this.#pending = true
    this.#wake?.()
  }

  /** Resolves on a notification (possibly one that came before the call), after `ms`, or when `signal` aborts. */
  wait(ms: number, signal?: AbortSignal): Promise<WakeReason> {
    if (signal?.aborted) return Promise.resolve('aborted')
    if (this.#pending) {
      this.#pending = false
      return Promise.resolve('notified')
    }
    return new Promise((resolve) => {
      const finish = (reason: WakeReason): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        this.#wake = undefined
        if (reason === 'notified') this.#pending = false
        resolve(reason)
      }
      const onAbort = (): void => finish('aborted')
      const timer = setTimeout(() => finish('timeout'), ms)
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#wake = () => finish('notified')
    })
  }
}
