import type { Sql } from 'postgres'

export interface LogHeadRow {
  last_position: string | null
  xmin: string
  /** Committed events the gap-safe read cannot return yet (their tx_id is at or after the snapshot xmin). */
  waiting: string
}

/**
 * The position of the last event in the log order (tx_id, global_position), read
 * through that order's index (a max() over global_position has no index since
 * 0010 and would scan the table), the snapshot xmin the gap-safe read stops
 * at, and how many committed events wait behind it (needs a cross-tenant role).
 */
export async function logHeadSql(sql: Sql): Promise<LogHeadRow> {
  const [row] = await sql<LogHeadRow[]>`
    select (select global_position::text from eventplane.events
             order by tx_id desc, global_position desc limit 1) as last_position,
           pg_snapshot_xmin(pg_current_snapshot())::text as xmin,
           (select count(*) from eventplane.events
             where tx_id >= pg_snapshot_xmin(pg_current_snapshot()))::text as waiting`
  return row!
}
