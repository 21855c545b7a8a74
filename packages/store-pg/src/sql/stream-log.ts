import type { Checkpoint } from '@eventplane/core'
import type { Sql } from 'postgres'
import type { EventValues } from '../rows.ts'
import { EVENT_COLUMNS, eventValuesCursor } from './event-columns.ts'
import { gapSafeLogSql } from './read-all.ts'

/**
 * Every event after `after` in the gap-safe global order, as one statement
 * read through a cursor of `batchRows` (one snapshot: everything older than
 * its oldest running transaction). Cross-tenant roles only. The columns are
 * the readers' (`EVENT_COLUMNS`, rows as arrays), so a streamed row maps with
 * `toRecordedEvent` like a row read by `readAll`.
 */
export function streamLogSql(sql: Sql, after: Checkpoint, batchRows: number): AsyncIterable<EventValues[]> {
  return eventValuesCursor(sql`${gapSafeLogSql(sql, EVENT_COLUMNS, after)}`, batchRows)
}
