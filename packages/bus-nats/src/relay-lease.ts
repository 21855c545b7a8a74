import postgres, { type Options, type Sql } from 'postgres'
import { type Checkpoint, START, Unavailable } from '@eventplane/core'

/** How long one statement on the lock session may take before the session is given up. */
const SESSION_TIMEOUT_MS = 5000

/**
 * The relay's hold on its name: a session-level advisory lock on a session
 * of its own. PostgreSQL releases the lock when that session ends (the
 * process died, the network dropped), which is how a standby relay takes
 * over. The checkpoint is written through the same session and only while it
 * holds the lock, so a relay that lost its lease can never move the checkpoint.
 *
 * The session is a dedicated one-connection client cloned from the caller's
 * pool options, not `sql.reserve()`: postgres.js 3.4.9 throws an uncatchable
 * error when a reserved connection is used again after its backend was
 * terminated (porsager/postgres#1208), while a pool reconnects cleanly and
 * the fence below notices that the new session holds no lock.
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
  readonly #key: string
  /** The lock key as pg_locks shows a bigint key: high half in classid, low half in objid. */
  readonly #classid: string
  readonly #objid: string

  constructor(sql: Sql, name: string) {
    this.#options = { ...sql.options, max: 1, idle_timeout: null, max_lifetime: null } as unknown as Options<
      Record<string, never>
    >
    this.#session = postgres(this.#options)
    this.#name = name
    const key = relayLockKey(name)
    this.#key = key.toString()
    const unsigned = BigInt.asUintN(64, key)
    this.#classid = (unsigned >> 32n).toString()
    this.#objid = (unsigned & 0xffffffffn).toString()
  }

  /** Tries once to take the lock; false when another session holds it. Throws when PostgreSQL is unreachable. */
  async tryAcquire(): Promise<boolean> {
    const [row] = await this.#run(
      (session) => session<{ locked: boolean }[]>`select pg_try_advisory_lock(${this.#key}::bigint) as locked`,
    )
    return row?.locked === true
  }

  /** True while this relay's session holds the lock (false once the session was lost and replaced). */
  async held(): Promise<boolean> {
    const rows = await this.#run(
      (session) => session`
      select 1 from pg_locks
       where locktype = 'advisory' and granted and pid = pg_backend_pid() and objsubid = 1
         and classid = ${this.#classid}::oid and objid = ${this.#objid}::oid`,
    )
    return rows.length === 1
  }

  /**
   * Stores the checkpoint, and the `created` timestamp of the stream it refers
   * to, if this session holds the lock. Never moves the checkpoint backwards,
   * unless `reset` (the stream was replaced, see Relay). Returns false when
   * the lease is gone (nothing was written).
   */
  async storeCheckpoint(c: Checkpoint, streamCreated: string, options: { reset?: boolean } = {}): Promise<boolean> {
    const rows = await this.#run(
      (session) => session`
      insert into eventplane.relay_checkpoints as rc (name, tx_id, global_position, updated_at, stream_created)
      select ${this.#name}, ${c.txId.toString()}::xid8, ${c.position.toString()}::bigint, now(), ${streamCreated}
       where exists (
         select 1 from pg_locks
          where locktype = 'advisory' and granted and pid = pg_backend_pid() and objsubid = 1
            and classid = ${this.#classid}::oid and objid = ${this.#objid}::oid)
      on conflict (name) do update
         set tx_id = excluded.tx_id, global_position = excluded.global_position, updated_at = excluded.updated_at,
             stream_created = excluded.stream_created
       where ${options.reset === true} or (rc.tx_id, rc.global_position) <= (excluded.tx_id, excluded.global_position)
      returning 1`,
    )
    return rows.length === 1
  }

  /** Gives the lock up; when the session is already gone, so is the lock. Never throws. */
  async release(): Promise<void> {
    try {
      await this.#run((session) => session`select pg_advisory_unlock_all()`)
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
      return await Promise.race([statement(session), late])
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

/** The stored checkpoint of relay `name`, or START when it has none yet. */
export async function loadRelayCheckpoint(sql: Sql, name: string): Promise<Checkpoint> {
  return (await loadRelayRecord(sql, name))?.checkpoint ?? START
}

/** A relay's stored checkpoint and the `created` timestamp of the stream it refers to (null on rows older than migration 0004). */
export interface RelayRecord {
  checkpoint: Checkpoint
  streamCreated: string | null
}

/** The stored row of relay `name`, or undefined when it has none yet. */
export async function loadRelayRecord(sql: Sql, name: string): Promise<RelayRecord | undefined> {
  const [row] = await sql<{ tx_id: string; global_position: string; stream_created: string | null }[]>`
    select tx_id::text, global_position::text, stream_created from eventplane.relay_checkpoints where name = ${name}`
  if (row === undefined) return undefined
  return {
    checkpoint: { txId: BigInt(row.tx_id), position: BigInt(row.global_position) },
    streamCreated: row.stream_created,
  }
}

/**
 * The advisory lock key of relay `name`: a stable signed 64-bit FNV-1a hash of
 * `eventplane.relay/<name>`, the same in every relay process (and in `status`).
 */
export function relayLockKey(name: string): bigint {
  let hash = 0xcbf29ce484222325n
  for (const byte of new TextEncoder().encode(`eventplane.relay/${name}`)) {
    hash ^= BigInt(byte)
    hash = BigInt.asUintN(64, hash * 0x100000001b3n)
  }
  return BigInt.asIntN(64, hash)
}
