import type { Checkpoint } from '@eventplane/core'
import type { Sql } from 'postgres'
import type { EventRow } from '../rows.ts'
import { EVENT_COLUMNS } from './event-columns.ts'
import { gapSafeLogSql } from './read-all.ts'

/**
 * Every event after `after` in the gap-safe global order, as one statement
 * read through a cursor of `batchRows` (one snapshot: everything older than
 * its oldest running transaction). Cross-tenant roles only. The columns are
 * the readers' (`EVENT_COLUMNS`: timestamps formatted by PostgreSQL), so a
 * streamed row maps with `toRecordedEvent` like a row read by `readAll`.
 */
export function streamLogSql(sql: Sql, after: Checkpoint, batchRows: number): AsyncIterable<EventRow[]> {
  return sql<EventRow[]>`${gapSafeLogSql(sql, EVENT_COLUMNS, after)}`.cursor(batchRows)
}
