import type { PendingQuery, Row, Sql } from 'postgres'
import type { Checkpoint } from '@eventplane/core'
import type { EventRow, EventValues } from '../rows.ts'
import { EVENT_COLUMNS, EVENT_COLUMNS_DATA_TEXT, eventValues } from './event-columns.ts'

/**
 * Where a gap-safe read stops. `exact`: the log's horizon (migrations 0018
 * and 0020, eventplane.log_horizon: older than every transaction still
 * running that could write into this log; it may read every session, 0.2-0.6
 * ms of backend CPU, when rows wait behind a running transaction). `xmin`:
 * older than every transaction running anywhere in the cluster (0020's
 * eventplane.snapshot_horizon: the snapshot's xmin, at or below the exact
 * horizon: also never skips a row, may hold rows back longer, costs nothing).
 * Both go on to the end of the checkpoint's transaction when it has ended
 * (0020), so no rule stops a read in the middle of a transaction. A reader
 * that reads again and again (the relay) takes `xmin` and asks for `exact`
 * now and then; one-off reads take `exact`.
 */
export type HorizonRule = 'exact' | 'xmin'

/**
 * The gap-safe global order after `after` as a query fragment selecting
 * `columns` (alias `e`): only rows below the horizon `rule` gives (so a slow
 * transaction is never skipped), ordered by (tx_id, global_position).
 * Cross-tenant roles only.
 */
export function gapSafeLogSql(
  sql: Sql,
  columns: string,
  after: Checkpoint,
  rule: HorizonRule = 'exact',
): PendingQuery<Row[]> {
  const tx = after.txId.toString()
  const position = after.position.toString()
  // A scalar subquery (an InitPlan): evaluated once, when the scan starts. As a bare call the planner
  // also runs it to estimate the index condition whenever it makes a custom plan (PostgreSQL's choice
  // per prepared statement: seen on every read of one relay, on none of another): the look-up twice.
  // snapshot_horizon is SQL the planner inlines (no call, no table access): a bare index key is cheapest.
  const horizon =
    rule === 'exact'
      ? sql`(select eventplane.log_horizon(pg_current_snapshot(), ${tx}::xid8, ${position}::bigint))`
      : sql`eventplane.snapshot_horizon(pg_current_snapshot(), ${tx}::xid8)`
  return sql`
    select ${sql.unsafe(columns)} from eventplane.events e
     where (e.tx_id, e.global_position) > (${tx}::xid8, ${position}::bigint)
       and e.tx_id < ${horizon}
     order by e.tx_id, e.global_position`
}

/**
 * One batch of the gap-safe global order after `after`: only rows below the
 * log's horizon (so a slow transaction is never skipped), ordered by
 * (tx_id, global_position).
 * Without a tenant this needs a cross-tenant role (relay, operator).
 */
export function readAllSql(sql: Sql, after: Checkpoint, limit: number, tenant?: string): Promise<EventValues[]> {
  if (tenant !== undefined) {
    return eventValues(sql`
      select ${sql.unsafe(EVENT_COLUMNS)} from eventplane.read_all_for_tenant(${tenant}, ${after.txId.toString()}::xid8, ${after.position.toString()}::bigint, ${limit}) e`)
  }
  return eventValues(sql`${gapSafeLogSql(sql, EVENT_COLUMNS, after)} limit ${limit}`)
}

/** An event row with `data` as its JSON text (PostgreSQL's jsonb output), for forwarding without parsing. */
export type EventTextRow = EventRow<string>

/**
 * readAllSql for a cross-tenant role, with `data` as JSON text: the relay
 * splices it into the wire form instead of parsing and re-encoding it.
 */
export function readAllTextSql(
  sql: Sql,
  after: Checkpoint,
  limit: number,
  rule: HorizonRule = 'exact',
): Promise<EventValues[]> {
  return eventValues(sql`${gapSafeLogSql(sql, EVENT_COLUMNS_DATA_TEXT, after, rule)} limit ${limit}`)
}
