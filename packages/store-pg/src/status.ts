import type { Sql } from 'postgres'
import { type Checkpoint, START } from '@eventplane/core'
import { typedPgErrors } from './pg-errors.ts'
import { countEventsAfter, projectionRebuildProgress } from './projections.ts'
import { logHeadSql } from './sql/log-head.ts'
import { type OpenTransactionRow, openTransactionsSql } from './sql/open-transactions.ts'
import type { ProjectionRebuild } from './sql/projection-rebuild-rows.ts'
import { listProjectionCheckpointsSql } from './sql/projection-checkpoints-list.ts'
import { relaysSql } from './sql/relays.ts'
import { terminateStuckTransactionsSql } from './sql/terminate-stuck-transactions.ts'

// What an operator (or the relay's guard) needs to see how the log flows: the
// head, what holds the gap-safe read back (by the horizon's rule, 0018: not
// another database's transactions), relay and projection lag. Cross-tenant
// reads: the operator or relay role.

/**
 * A transaction that holds an xid, and whether it holds back this log's
 * gap-safe read, by the horizon's rule (0018): every one does except a
 * session of another database.
 */
export interface OpenTransaction {
  /**
   * `session`: a client session's transaction. `prepared`: a prepared transaction (no session, `pid` null; it
   * holds the read back whatever its database). `other`: an xid the read waits for that is neither (another kind
   * of process of this database, such as autovacuum, or one without a visible session): no start time.
   */
  kind: 'session' | 'prepared' | 'other'
  pid: number | null
  /** Database and role of the session (or the prepared transaction's database and owner). */
  database: string | null
  role: string | null
  application: string | null
  xid: string
  /** A prepared transaction's name (what COMMIT PREPARED and ROLLBACK PREPARED take); null otherwise. */
  gid: string | null
  /** When the transaction began (a prepared one: when it was prepared). */
  startedAt: Date | null
  /** Milliseconds since `startedAt`. */
  ageMs: number | null
  /** Whether it can write into this log and so holds back its gap-safe read: false only for another database's. */
  holdsLog: boolean
}

export interface LogStatus {
  /** The newest position, or null for an empty log. */
  headPosition: bigint | null
  /** The oldest xid still running anywhere in the cluster. */
  snapshotXmin: bigint
  /**
   * Where the gap-safe read stops: the oldest xid still running that could write into this log (another
   * database's transactions are passed, 0018); at or above `snapshotXmin`.
   */
  horizon: bigint
  /** Committed events the gap-safe read cannot return yet. */
  waiting: number
  /** Every transaction holding an xid, in any database, oldest first, each with whether it holds the read back. */
  openTransactions: OpenTransaction[]
}

/** The log's head and what holds its gap-safe read back. */
export async function logStatus(sql: Sql): Promise<LogStatus> {
  const head = await typedPgErrors(() => logHeadSql(sql))
  return {
    headPosition: head.last_position === null ? null : BigInt(head.last_position),
    snapshotXmin: BigInt(head.xmin),
    horizon: BigInt(head.horizon),
    waiting: Number(head.waiting),
    openTransactions: await openTransactions(sql),
  }
}

/**
 * Every transaction in the cluster that holds an xid (client sessions of
 * any database, prepared transactions, and any other xid that holds this
 * log's read back), oldest first, each classified by the horizon's rule
 * (`holdsLog`, one SQL statement: sql/open-transactions.ts); never query text.
 */
export async function openTransactions(sql: Sql): Promise<OpenTransaction[]> {
  return (await typedPgErrors(() => openTransactionsSql(sql))).map(toOpenTransaction)
}

/** The transactions that hold back this log's gap-safe read (`holdsLog`), oldest first: the relay's gauge. */
export async function transactionsHoldingLog(sql: Sql): Promise<OpenTransaction[]> {
  return (await openTransactions(sql)).filter((t) => t.holdsLog)
}

/**
 * Transactions that hold back this log's read and began more than
 * `olderThanMs` ago: the ones the guard reports. Another database's never
 * are; a transaction without a known start never is.
 */
export async function stuckTransactions(sql: Sql, olderThanMs: number): Promise<OpenTransaction[]> {
  return (await transactionsHoldingLog(sql)).filter((t) => t.ageMs !== null && t.ageMs > olderThanMs)
}

/** A session the guard terminated. */
export interface TerminatedTransaction {
  pid: number
  role: string | null
  xid: string
  ageMs: number
  terminated: boolean
}

/**
 * Terminates every non-superuser session of this database whose transaction
 * holds an xid and began more than `olderThanMs` (at least 1000) ago, through
 * the guard role's function (pg_signal_backend). Needs eventplane_relay.
 */
export async function terminateStuckTransactions(sql: Sql, olderThanMs: number): Promise<TerminatedTransaction[]> {
  if (!Number.isSafeInteger(olderThanMs) || olderThanMs < 1000)
    throw new RangeError('olderThanMs must be an integer of at least 1000')
  const rows = await typedPgErrors(() => terminateStuckTransactionsSql(sql, olderThanMs))
  return rows.map((r) => ({
    pid: r.pid,
    role: r.role,
    xid: r.backend_xid,
    ageMs: Number(r.age_ms),
    terminated: r.terminated,
  }))
}

export interface RelayStatus {
  name: string
  /** Null when the relay never stored a checkpoint. */
  checkpoint: Checkpoint | null
  updatedAt: Date | null
  /** Committed events after the checkpoint (including ones the gap-safe read still holds back). */
  lag: number
  /** The live session holding the relay's lease (the active relay), if any. */
  holderPid: number | null
}

/** Every known relay (with a checkpoint or a lease, plus `names`), its checkpoint, lag and lease holder. */
export async function relayStatuses(sql: Sql, names: readonly string[] = []): Promise<RelayStatus[]> {
  const rows = await typedPgErrors(() => relaysSql(sql, names))
  return Promise.all(
    rows.map(async (r) => {
      const checkpoint = r.tx_id === null ? null : { txId: BigInt(r.tx_id), position: BigInt(r.global_position ?? '0') }
      return {
        name: r.name,
        checkpoint,
        updatedAt: r.updated_at,
        lag: await countEventsAfter(sql, checkpoint ?? START),
        holderPid: r.holder_pid,
      }
    }),
  )
}

export interface ProjectionStatus {
  projection: string
  version: number
  checkpoint: Checkpoint
  updatedAt: Date
  /** Events of every tenant after the checkpoint; an upper bound (the projection's filter may skip some). */
  lag: number
  /** The generation readers see. */
  generation: number
  /** A rebuild in progress (or interrupted): readers still see the previous complete generation. */
  rebuild: (ProjectionRebuild & { remaining: number }) | null
}

/** Every projection checkpoint with its lag behind the log. */
export async function projectionStatuses(sql: Sql): Promise<ProjectionStatus[]> {
  const rows = await typedPgErrors(() => listProjectionCheckpointsSql(sql))
  return Promise.all(
    rows.map(async (r) => {
      const checkpoint = { txId: BigInt(r.tx_id), position: BigInt(r.global_position) }
      const rebuild = await projectionRebuildProgress(sql, r.projection)
      return {
        projection: r.projection,
        version: r.version,
        checkpoint,
        updatedAt: r.updated_at,
        lag: await countEventsAfter(sql, checkpoint),
        generation: r.generation,
        rebuild: rebuild ? { ...rebuild, remaining: await countEventsAfter(sql, rebuild.checkpoint) } : null,
      }
    }),
  )
}

function toOpenTransaction(r: OpenTransactionRow): OpenTransaction {
  return {
    kind: r.kind,
    pid: r.pid,
    database: r.database,
    role: r.role,
    application: r.application || null,
    xid: r.backend_xid,
    gid: r.gid,
    startedAt: r.xact_start,
    ageMs: r.age_ms === null ? null : Number(r.age_ms),
    holdsLog: r.holds_log,
  }
}
