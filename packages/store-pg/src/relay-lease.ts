import postgres, { type Options, type PendingQuery, type Sql } from 'postgres'
import { type Checkpoint, START, Unavailable } from '@eventplane/core'
import { typedPgErrors } from './pg-errors.ts'
import { type LogEventRef, logEventAtSql } from './sql/log-event-at.ts'
import { loadRelayCheckpointSql } from './sql/relay-checkpoint-load.ts'
import { storeRelayCheckpointSql } from './sql/relay-checkpoint-store.ts'
import { acquireRelayLeaseSql } from './sql/relay-lease-acquire.ts'
import { relayLeaseHeldSql } from './sql/relay-lease-held.ts'
import { releaseRelayLeaseSql } from './sql/relay-lease-release.ts'

/** How a lease's release went: done, cut at its bound, or failed (the session lost, or no lease table). */
export type LeaseRelease = 'released' | 'timed_out' | 'failed'

/** A lease statement cut at its bound (see RelayLease#run). */
class StatementTimedOut extends Unavailable {}

/** How long one statement on the lease session may take before it is cancelled and the session given up. */
const SESSION_TIMEOUT_MS = 5000

/**
 * A relay's hold on its name: a row of eventplane.relay_leases naming a
 * session of its own (pid and start time). Only eventplane_relay may write or
 * lock those rows, so no other role can take or block the lease (an advisory
 * lock, used before, is open to every role). A standby takes the lease as
 * soon as the holder's session is gone (the process died, the network
 * dropped, or `close` ended it): there is no time-to-live, the lease lasts
 * exactly as long as its session. The checkpoint is written through the same
 * session and only while the row names it, so a relay that lost its lease
 * never moves the checkpoint. The session holds no transaction open, so it
 * never holds back the log.
 *
 * The session is a dedicated one-connection client cloned from the caller's
 * pool options, not `sql.reserve()`: postgres.js 3.4.9 throws an uncatchable
 * error when a reserved connection is used again after its backend was
 * terminated (porsager/postgres#1208), while a pool reconnects cleanly and
 * the fence notices that the new session is not the one the lease names.
 *
 * Every statement on the session is bounded in time (5 s unless `timeoutMs`
 * says otherwise), and a statement that fails, times out or is cut short (`cancel`)
 * replaces the session with a fresh client: after its backend was terminated,
 * postgres.js 3.4.9 can leave a one-connection client waiting forever on its
 * next query (seen here with pg_terminate_backend). One cut short is first
 * cancelled in PostgreSQL (a cancel request, as psql's Ctrl-C), so its
 * backend does not go on waiting for a lock, and the old session is ended:
 * the lease named it, so it is gone either way, and callers already treat a
 * failed statement as a lost lease.
 */
export class RelayLease {
  readonly #options: Options<Record<string, never>>
  #session: Sql
  readonly #name: string
  /** Cuts short each statement in flight (see `cancel`). */
  readonly #inFlight = new Set<(e: Error) => void>()
  #closed = false
  readonly #timeoutMs: number

  /**
   * `sql`: a pool connected as eventplane_relay; its options are cloned for the lease's own session.
   * `timeoutMs`: the bound of each statement (default 5000).
   */
  constructor(sql: Sql, name: string, options: { timeoutMs?: number } = {}) {
    this.#options = { ...sql.options, max: 1, idle_timeout: null, max_lifetime: null } as unknown as Options<
      Record<string, never>
    >
    this.#session = postgres(this.#options)
    this.#name = name
    this.#timeoutMs = options.timeoutMs ?? SESSION_TIMEOUT_MS
  }

  /** Tries once to take the lease; false when another live session holds it. Throws when PostgreSQL is unreachable. */
  tryAcquire(): Promise<boolean> {
    return this.#run((session) => acquireRelayLeaseSql(session, this.#name))
  }

  /** True while this relay's session holds the lease (false once the session was lost and replaced). */
  held(): Promise<boolean> {
    return this.#run((session) => relayLeaseHeldSql(session, this.#name))
  }

  /**
   * Stores the checkpoint, and the `created` timestamp of the stream it refers
   * to, if this session holds the lease. Never moves the checkpoint backwards,
   * unless `reset` (the stream was replaced, or holds less than the
   * checkpoint). Returns false when the lease is gone (nothing was written).
   */
  storeCheckpoint(c: Checkpoint, streamCreated: string, options: { reset?: boolean } = {}): Promise<boolean> {
    return this.#run((session) =>
      storeRelayCheckpointSql(session, this.#name, c, streamCreated, options.reset === true),
    )
  }

  /**
   * Gives the lease up within `timeoutMs` (default: the bound of every statement); when the session is
   * already gone, so is the lease. Past the bound the statement is cancelled
   * and the session ended, which frees the lease as well. Says how it went
   * (`released`, `timed_out` past the bound, `failed` otherwise: the session
   * lost, or no lease table); never throws.
   */
  async release(options: { timeoutMs?: number } = {}): Promise<LeaseRelease> {
    try {
      await this.#run((session) => releaseRelayLeaseSql(session, this.#name), options.timeoutMs)
      return 'released'
    } catch (e) {
      // The session is gone (or was ended just now), and the lease names a dead session: a standby takes it.
      return e instanceof StatementTimedOut ? 'timed_out' : 'failed'
    }
  }

  /**
   * Cuts short every statement in flight on the session (one its caller no
   * longer waits for, or one that must not hold a stop up): each fails at
   * once with `store.unavailable`, is cancelled in PostgreSQL, and the session
   * is replaced (see the class comment). Nothing happens when none is in flight.
   */
  cancel(): void {
    for (const cut of this.#inFlight)
      cut(new Unavailable('store.unavailable', 'the relay lease statement was cut short'))
  }

  /**
   * Cancels a statement still in flight, releases the lease within
   * `timeoutMs` (see `release`; 0 skips it: `skipped`) and ends the session at
   * once (a session ended frees the lease too, once PostgreSQL sees it go).
   * Says how the release went.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<LeaseRelease | 'skipped'> {
    this.cancel()
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs
    const released = timeoutMs > 0 ? await this.release({ timeoutMs }) : 'skipped'
    this.#closed = true
    // Nothing is in flight now: the session sends its Terminate message and goes, without waiting for an answer.
    await this.#session.end({ timeout: 0 })
    return released
  }

  /** Runs one statement on the session, bounded in time; on failure the session is replaced (see the class comment). */
  async #run<T>(statement: (session: Sql) => Promise<T>, timeoutMs = this.#timeoutMs): Promise<T> {
    const session = this.#session
    const queries: PendingQuery<never>[] = []
    let late = false
    let reject!: (e: Error) => void
    const cutShort = new Promise<never>((_, r) => (reject = r))
    const cut = (e: Error): void => {
      if (late) return
      late = true
      // It may still run in PostgreSQL (waiting for a lock): cancel it there, then end the session, now, so that
      // the next statement (a release after `cancel`) goes to a fresh one.
      for (const q of queries) q.cancel()
      this.#retire(session)
      reject(e)
    }
    this.#inFlight.add(cut)
    const timer = setTimeout(
      () =>
        cut(
          new StatementTimedOut('store.unavailable', `the relay lease session did not answer within ${timeoutMs} ms`),
        ),
      timeoutMs,
    )
    try {
      return await Promise.race([typedPgErrors(() => statement(recording(session, queries))), cutShort])
    } catch (e) {
      this.#retire(session)
      throw e
    } finally {
      clearTimeout(timer)
      this.#inFlight.delete(cut)
    }
  }

  /** Replaces `session` with a fresh client, unless closed, and ends it (see the class comment); once. */
  #retire(session: Sql): void {
    if (this.#session !== session) return
    if (!this.#closed) this.#session = postgres(this.#options)
    void session.end({ timeout: 0 }).catch(() => {})
  }
}

/** `session`, noting each query it starts in `queries` (so that one cut short can be cancelled). */
function recording(session: Sql, queries: PendingQuery<never>[]): Sql {
  return new Proxy(session, {
    apply(target, self, args) {
      const query = Reflect.apply(target, self, args)
      if (typeof (query as Partial<PendingQuery<never>>)?.cancel === 'function') queries.push(query)
      return query
    },
  })
}

/** A relay's stored checkpoint and the `created` timestamp of the stream it refers to (null on rows older than migration 0004). */
export interface RelayRecord {
  checkpoint: Checkpoint
  streamCreated: string | null
}

/** The stored row of relay `name`, or undefined when it has none yet. */
export async function loadRelayRecord(sql: Sql, name: string): Promise<RelayRecord | undefined> {
  const row = await typedPgErrors(() => loadRelayCheckpointSql(sql, name))
  if (row === undefined) return undefined
  return {
    checkpoint: { txId: BigInt(row.tx_id), position: BigInt(row.global_position) },
    streamCreated: row.stream_created,
  }
}

/** The stored checkpoint of relay `name`, or START when it has none yet. */
export async function loadRelayCheckpoint(sql: Sql, name: string): Promise<Checkpoint> {
  return (await loadRelayRecord(sql, name))?.checkpoint ?? START
}

/** Whether the log holds exactly the event `ref` names (id and tenant at its tx id and position). */
export function logHoldsEvent(sql: Sql, ref: LogEventRef): Promise<boolean> {
  return typedPgErrors(() => logEventAtSql(sql, ref))
}
