import type { Checkpoint } from '@eventplane/core'
import type { Sql } from 'postgres'
import type { EventRow } from '../rows.ts'
import { EVENT_COLUMNS } from './event-columns.ts'

/**
 * Every event after `after` in the gap-safe global order, as one statement
 * read through a cursor of `batchRows` (one snapshot: everything older than
 * its oldest running transaction). Cross-tenant roles only. The columns are
 * the readers' (`EVENT_COLUMNS`: timestamps formatted by PostgreSQL), so a
 * streamed row maps with `toRecordedEvent` like a row read by `readAll`.
 */
export function streamLogSql(sql: Sql, after: Checkpoint, batchRows: number): AsyncIterable<EventRow[]> {
  return sql<EventRow[]>`
    select ${sql.unsafe(EVENT_COLUMNS)}
      from eventplane.events e
     where (e.tx_id, e.global_position) > (${after.txId.toString()}::xid8, ${after.position.toString()}::bigint)
       and e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
     order by e.tx_id, e.global_position`.cursor(batchRows)
}
