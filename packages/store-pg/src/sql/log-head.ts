import type { Sql } from 'postgres'

export interface LogHeadRow {
  last_position: string | null
  xmin: string
  /** Committed events the gap-safe read cannot return yet (their tx_id is at or after the snapshot xmin). */
  waiting: string
}

/**
 * The newest position, the snapshot xmin the gap-safe read stops at, and how
 * many committed events wait behind it (needs a cross-tenant role).
 */
export async function logHeadSql(sql: Sql): Promise<LogHeadRow> {
  const [row] = await sql<LogHeadRow[]>`
    select (select max(global_position)::text from eventplane.events) as last_position,
           pg_snapshot_xmin(pg_current_snapshot())::text as xmin,
           (select count(*) from eventplane.events
             where tx_id >= pg_snapshot_xmin(pg_current_snapshot()))::text as waiting`
  return row!
}
