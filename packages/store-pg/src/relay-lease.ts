import postgres, { type Options, type Sql } from 'postgres'
import { type Checkpoint, START, Unavailable } from '@eventplane/core'
import { typedPgErrors } from './pg-errors.ts'
import { loadRelayCheckpointSql } from './sql/relay-checkpoint-load.ts'
import { storeRelayCheckpointSql } from './sql/relay-checkpoint-store.ts'
import { acquireRelayLeaseSql } from './sql/relay-lease-acquire.ts'
import { relayLeaseHeldSql } from './sql/relay-lease-held.ts'
import { releaseRelayLeaseSql } from './sql/relay-lease-release.ts'
import { type RelayLockKey, relayLockKey } from './relay-lock-key.ts'

/** How long one statement on the lease session may take before the session is given up. */
const SESSION_TIMEOUT_MS = 5000

/**
 * A relay's hold on its name: a session-level advisory lock on a session of
 * its own. PostgreSQL releases the lock when that session ends (the process
 * died, the network dropped), which is how a standby relay takes over. The
 * checkpoint is written through the same session and only while it holds the
 * lock, so a relay that lost its lease can never move the checkpoint.
 *
 * The session is a dedicated one-connection client cloned from the caller's
 * pool options, not `sql.reserve()`: postgres.js 3.4.9 throws an uncatchable
 * error when a reserved connection is used again after its backend was
 * terminated (porsager/postgres#1208), while a pool reconnects cleanly and
 * the fence notices that the new session holds no lock.
 *
 * Every statement on the session is bounded in time, and a statement that
 * fails or times out replaces the session with a fresh client: after its
 * backend was terminated, postgres.js 3.4.9 can leave a one-connection client
 * waiting forever on its next query (seen here with pg_terminate_backend).
 * The lock lived in the old session, so it is gone either way, and callers
 * already treat a failed statement as a lost lease.
 */
export class RelayLease {
  readonly #options: Options<Record<string, never>>
  #session: Sql
  readonly #name: string
  readonly #key: RelayLockKey

  /** `sql`: a pool connected as eventplane_relay; its options are cloned for the lease's own session. */
  constructor(sql: Sql, name: string) {
    this.#options = { ...sql.options, max: 1, idle_timeout: null, max_lifetime: null } as unknown as Options<
      Record<string, never>
    >
    this.#session = postgres(this.#options)
    this.#name = name
    this.#key = relayLockKey(name)
  }

  /** Tries once to take the lock; false when another session holds it. Throws when PostgreSQL is unreachable. */
  tryAcquire(): Promise<boolean> {
    return this.#run((session) => acquireRelayLeaseSql(session, this.#key))
  }

  /** True while this relay's session holds the lock (false once the session was lost and replaced). */
  held(): Promise<boolean> {
    return this.#run((session) => relayLeaseHeldSql(session, this.#key))
  }

  /**
   * Stores the checkpoint, and the `created` timestamp of the stream it refers
   * to, if this session holds the lock. Never moves the checkpoint backwards,
   * unless `reset` (the stream was replaced). Returns false when the lease is
   * gone (nothing was written).
   */
  storeCheckpoint(c: Checkpoint, streamCreated: string, options: { reset?: boolean } = {}): Promise<boolean> {
    return this.#run((session) =>
      storeRelayCheckpointSql(session, this.#name, this.#key, c, streamCreated, options.reset === true),
    )
  }

  /** Gives the lock up; when the session is already gone, so is the lock. Never throws. */
  async release(): Promise<void> {
    try {
      await this.#run((session) => releaseRelayLeaseSql(session))
    } catch {
      // The session is gone, and its locks with it.
    }
  }

  /** Releases the lock and closes the session. */
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
              `the relay lock session did not answer within ${SESSION_TIMEOUT_MS} ms`,
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
