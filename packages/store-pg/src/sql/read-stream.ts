import type { Sql } from 'postgres'
import type { EventValues } from '../rows.ts'
import { EVENT_COLUMNS, eventValues } from './event-columns.ts'

/** One batch of a stream, in one round trip with the tenant set for that statement only. */
export function readStreamSql(
  sql: Sql,
  tenant: string,
  category: string,
  streamId: string,
  from: number,
  backward: boolean,
  limit: number,
): Promise<EventValues[]> {
  return eventValues(sql`
    select ${sql.unsafe(EVENT_COLUMNS)} from eventplane.read_stream(${tenant}, ${category}, ${streamId}, ${from}, ${backward}, ${limit}) e`)
}
