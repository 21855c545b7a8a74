import postgres, { type Options, type Sql } from 'postgres'
import { type Checkpoint, START, Unavailable } from '@eventplane/core'
import { typedPgErrors } from './pg-errors.ts'
import { type LogEventRef, logEventAtSql } from './sql/log-event-at.ts'
import { loadRelayCheckpointSql } from './sql/relay-checkpoint-load.ts'
import { storeRelayCheckpointSql } from './sql/relay-checkpoint-store.ts'
import { acquireRelayLeaseSql } from './sql/relay-lease-acquire.ts'
import { relayLeaseHeldSql } from './sql/relay-lease-held.ts'
import { releaseRelayLeaseSql } from './sql/relay-lease-release.ts'

/** How long one statement on the lease session may take before the session is given up. */
const SESSION_TIMEOUT_MS = 5000

/**
 * A relay's hold on its name: a row of eventplane.relay_leases naming a
 * session of its own (pid and start time). Only eventplane_relay may write or
 * lock those rows, so no other role can take or block the lease (an advisory
 * lock, used before, is open to every role). A standby takes the lease as
 * soon as the holder's session is gone (the process died, the network
 * dropped). The checkpoint is written through the same session and only while
 * the row names it, so a relay that lost its lease never moves the checkpoint.
 * The session holds no transaction open, so it never holds back the log.
 *
 * The session is a dedicated one-connection client cloned from the caller's
 * pool options, not `sql.reserve()`: postgres.js 3.4.9 throws an uncatchable
 * error when a reserved connection is used again after its backend was
 * terminated (porsager/postgres#1208), while a pool reconnects cleanly and
 * the fence notices that the new session is not the one the lease names.
 *
 * Every statement on the session is bounded in time, and a statement that
 * fails or times out replaces the session with a fresh client: after its
 * backend was terminated, postgres.js 3.4.9 can leave a one-connection client
 * waiting forever on its next query (seen here with pg_terminate_backend).
 * The lease named the old session, so it is gone either way, and callers
 * already treat a failed statement as a lost lease.
 */
export class RelayLease {
  readonly #options: Options<Record<string, never>>
  #session: Sql
  readonly #name: string

  /** `sql`: a pool connected as eventplane_relay; its options are cloned for the lease's own session. */
  constructor(sql: Sql, name: string) {
    this.#options = { ...sql.options, max: 1, idle_timeout: null, max_lifetime: null } as unknown as Options<
      Record<string, never>
    >
    this.#session = postgres(this.#options)
    this.#name = name
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

  /** Gives the lease up; when the session is already gone, so is the lease. Never throws. */
  async release(): Promise<void> {
    try {
      await this.#run((session) => releaseRelayLeaseSql(session, this.#name))
    } catch {
      // The session is gone, and the lease names a dead session: a standby takes it.
    }
  }

  /** Releases the lease and closes the session. */
  async close(): Promise<void> {
    await this.release()
    await this.#session.end({ timeout: 5 })
  }

  /** Runs one statement on the session, bounded in time; on failure the session is replaced (see the class comment). */
  async #run<T>(statement: (session: Sql) => Promise<T>): Promise<T> {
    const session = this.#session
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Unavailable(
              'store.unavailable',
              `the relay lease session did not answer within ${SESSION_TIMEOUT_MS} ms`,
            ),
          ),
        SESSION_TIMEOUT_MS,
      )
    })
    try {
      return await Promise.race([typedPgErrors(() => statement(session)), late])
    } catch (e) {
      if (this.#session === session) {
        this.#session = postgres(this.#options)
        void session.end({ timeout: 0 }).catch(() => {})
      }
      throw e
    } finally {
      clearTimeout(timer)
    }
  }
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
