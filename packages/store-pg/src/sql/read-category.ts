import type { Sql } from 'postgres'
import type { Checkpoint } from '@eventplane/core'
import type { EventValues } from '../rows.ts'
import { EVENT_COLUMNS, eventValues } from './event-columns.ts'

/**
 * One batch of one category of one tenant after `after`, in the gap-safe
 * global order (a transaction still open is held back, never skipped); the
 * tenant is set for this statement only.
 */
export function readCategorySql(
  sql: Sql,
  tenant: string,
  category: string,
  after: Checkpoint,
  limit: number,
): Promise<EventValues[]> {
  return eventValues(sql`
    select ${sql.unsafe(EVENT_COLUMNS)} from eventplane.read_category(${tenant}, ${category}, ${after.txId.toString()}::xid8, ${after.position.toString()}::bigint, ${limit}) e`)
}
