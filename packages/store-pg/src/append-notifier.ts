import { channel } from 'node:diagnostics_channel'
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
/** NOTIFYs of one notifier in flight at once. */
const DEFAULT_IN_FLIGHT = 2

/**
 * Wakes the relay after appends commit, off the write path (issue 15). A
 * NOTIFY inside the appending transaction takes PostgreSQL's global notify
 * lock from pre-commit until after the commit's WAL flush, so notifying
 * commits cannot share a flush; here the appends commit without it and this
 * sends one NOTIFY for all appends that committed while the previous one was
 * in flight or less than `gapMs` ago (at most `maxInFlight` in flight, default
 * 2, one queued), so a busy writer sends at most ~1000/gapMs wake-ups a second
 * whatever its rate. Two in flight: an append that commits during a slow
 * round trip is announced by a NOTIFY sent ≥ gapMs after the last, not only
 * once that round trip is back (the relay's wake-up ~0.8 instead of ~1.3
 * round trips under load: docs/benchmarks/journal-2026-11-30-pm.md, 13:40–14:30,
 * "Two NOTIFYs in flight"). On a pool, its own
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
  readonly #maxInFlight: number
  #inFlight = 0
  /** performance.now() of the last NOTIFY sent (-Infinity before the first). */
  #lastSentAt = Number.NEGATIVE_INFINITY
  /** A NOTIFY due once `gapMs` has passed since the last: it covers every poke until it goes. */
  #timer: NodeJS.Timeout | undefined
  /** Poked while `maxInFlight` were in flight: send once one of them returns. */
  #again = false

  /**
   * `gapMs`: the least time between two NOTIFYs; pokes meanwhile share the next one.
   * `maxInFlight`: NOTIFYs that may be in flight at once (each a round trip on the pool);
   * with more than one, a poke during a slow round trip need not wait for it to return.
   */
  constructor(sql: Sql, gapMs = DEFAULT_GAP_MS, maxInFlight = DEFAULT_IN_FLIGHT) {
    this.#sql = sql
    this.#gapMs = gapMs
    this.#maxInFlight = Math.max(1, maxInFlight)
    const handle = sql as unknown as Record<string, unknown>
    this.#pooled = typeof handle.savepoint !== 'function' && typeof handle.release !== 'function'
  }

  /**
   * Appends committed: make sure a NOTIFY goes out after now. Never throws, never waits.
   * Every poke is followed by a NOTIFY sent after it: at once, by the one already due
   * (the timer), or, with `maxInFlight` in flight, by one sent when the first returns.
   */
  poke(): void {
    this.#poke(false)
  }

  /** `paced`: keep `gapMs` after the last NOTIFY even with none in flight (a poke that waited for one). */
  #poke(paced: boolean): void {
    if (this.#timer !== undefined) return
    if (this.#inFlight >= this.#maxInFlight) {
      this.#again = true
      return
    }
    // An idle notifier sends at once; while one is in flight (or right after, for pokes that waited) ≥ gapMs apart.
    const wait = paced || this.#inFlight > 0 ? this.#gapMs - (performance.now() - this.#lastSentAt) : 0
    if (wait <= 0) {
      void this.#send()
      return
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#send()
    }, wait)
  }

  async #send(): Promise<void> {
    this.#inFlight++
    const sentAt = performance.now()
    this.#lastSentAt = sentAt
    try {
      if (this.#pooled)
        await this.#sql`select set_config('synchronous_commit', 'off', true), pg_notify(${EVENTS_CHANNEL}, '')`
      else await this.#sql`select pg_notify(${EVENTS_CHANNEL}, '')`
      if (NOTIFY_TRACE.hasSubscribers) NOTIFY_TRACE.publish({ sentAt, at: performance.now() })
    } catch {
      // A lost wake-up only delays the relay until its next poll.
    } finally {
      this.#inFlight--
      if (this.#again) {
        this.#again = false
        this.#poke(true)
      }
    }
  }
}
