import { channel } from 'node:diagnostics_channel'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Sql } from 'postgres'

/** The channel the relay listens on to learn that events were appended. */
export const EVENTS_CHANNEL = 'eventplane_events'

/**
 * Each NOTIFY sent, `{ sentAt, at }` (`performance.now()` before and after its
 * round trip), published only while someone subscribes: for tools that time
 * the wake-up path (scripts/bench/bus-latency.ts).
 */
export const NOTIFY_TRACE = channel('eventplane:store.notify')

/** Least time between two NOTIFYs of one notifier (ms): bounds the wake-ups a busy writer sends. */
const DEFAULT_GAP_MS = 2

/**
 * Wakes the relay after appends commit, off the write path (issue 15). A
 * NOTIFY inside the appending transaction takes PostgreSQL's global notify
 * lock from pre-commit until after the commit's WAL flush, so notifying
 * commits cannot share a flush; here the appends commit without it and this
 * sends one NOTIFY for all appends that committed while the previous one was
 * in flight or less than `gapMs` ago (at most one in flight, one queued), so
 * a busy writer sends at most ~1000/gapMs wake-ups a second whatever its rate. On a pool, its own
 * transaction commits with `synchronous_commit = off`: a wake-up is a hint,
 * and the reader reads the log itself. On a reserved connection or inside a
 * transaction (the caller's, which may still be open) it is a plain NOTIFY,
 * delivered when that transaction commits, and changes no setting of it. A
 * failed NOTIFY is dropped: the relay's poll covers it.
 */
export class AppendNotifier {
  readonly #sql: Sql
  /** A pool: each statement is its own transaction. */
  readonly #pooled: boolean
  readonly #gapMs: number
  #inFlight = false
  #again = false

  /** `gapMs`: the least time between two NOTIFYs; pokes meanwhile share the next one. */
  constructor(sql: Sql, gapMs = DEFAULT_GAP_MS) {
    this.#sql = sql
    this.#gapMs = gapMs
    const handle = sql as unknown as Record<string, unknown>
    this.#pooled = typeof handle.savepoint !== 'function' && typeof handle.release !== 'function'
  }

  /** Appends committed: make sure a NOTIFY goes out after now. Never throws, never waits. */
  poke(): void {
    if (this.#inFlight) {
      this.#again = true
      return
    }
    this.#inFlight = true
    void this.#send()
  }

  async #send(): Promise<void> {
    try {
      for (;;) {
        this.#again = false
        const sentAt = performance.now()
        if (this.#pooled)
          await this.#sql`select set_config('synchronous_commit', 'off', true), pg_notify(${EVENTS_CHANNEL}, '')`
        else await this.#sql`select pg_notify(${EVENTS_CHANNEL}, '')`
        if (NOTIFY_TRACE.hasSubscribers) NOTIFY_TRACE.publish({ sentAt, at: performance.now() })
        if (!this.#again) break
        const wait = this.#gapMs - (performance.now() - sentAt)
        if (wait > 0) await sleep(wait)
      }
    } catch {
      // A lost wake-up only delays the relay until its next poll.
    } finally {
      this.#inFlight = false
    }
  }
}
