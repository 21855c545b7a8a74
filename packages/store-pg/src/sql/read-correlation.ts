import type { Sql } from 'postgres'
import type { EventValues } from '../rows.ts'
import { EVENT_COLUMNS, eventValues } from './event-columns.ts'

/** Every event of one correlation chain of one tenant, in log order. */
export function readCorrelationSql(
  sql: Sql,
  tenant: string,
  correlationId: string,
  limit: number,
): Promise<EventValues[]> {
  return eventValues(
    sql`select ${sql.unsafe(EVENT_COLUMNS)} from eventplane.read_correlation(${tenant}, ${correlationId}::uuid, ${limit}) e`,
  )
}
