import type { PendingQuery, Row, Sql } from 'postgres'
import type { Checkpoint } from '@eventplane/core'
import type { EventRow, EventValues } from '../rows.ts'
import { EVENT_COLUMNS, EVENT_COLUMNS_DATA_TEXT, eventValues } from './event-columns.ts'

/**
 * The gap-safe global order after `after` as a query fragment selecting
 * `columns` (alias `e`): only rows below the log's horizon (migration 0018:
 * older than every transaction still running that could write into this log,
 * so a slow transaction is never skipped), ordered by (tx_id, global_position).
 * Cross-tenant roles only.
 */
export function gapSafeLogSql(sql: Sql, columns: string, after: Checkpoint): PendingQuery<Row[]> {
  const tx = after.txId.toString()
  const position = after.position.toString()
  return sql`
    select ${sql.unsafe(columns)} from eventplane.events e
     where (e.tx_id, e.global_position) > (${tx}::xid8, ${position}::bigint)
       and e.tx_id < eventplane.log_horizon(pg_current_snapshot(), ${tx}::xid8, ${position}::bigint)
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
export function readAllTextSql(sql: Sql, after: Checkpoint, limit: number): Promise<EventValues[]> {
  return eventValues(sql`${gapSafeLogSql(sql, EVENT_COLUMNS_DATA_TEXT, after)} limit ${limit}`)
}
