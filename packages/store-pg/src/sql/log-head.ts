import type { Sql } from 'postgres'

export interface LogHeadRow {
  last_position: string | null
  /** The oldest transaction running anywhere in the cluster (the snapshot's xmin). */
  xmin: string
  /** Where the gap-safe read stops (eventplane.log_horizon, 0018): at or above xmin. */
  horizon: string
  /** Committed events the gap-safe read cannot return yet (their tx_id is at or above the horizon). */
  waiting: string
}

/**
 * The position of the last event in the log order (tx_id, global_position), read
 * through that order's index (a max() over global_position has no index since
 * 0010 and would scan the table), the cluster's snapshot xmin, the horizon the
 * gap-safe read stops at (both of this statement's snapshot), and how many
 * committed events wait behind it (needs a cross-tenant role).
 */
export async function logHeadSql(sql: Sql): Promise<LogHeadRow> {
  const [row] = await sql<LogHeadRow[]>`
    select (select global_position::text from eventplane.events
             order by tx_id desc, global_position desc limit 1) as last_position,
           pg_snapshot_xmin(pg_current_snapshot())::text as xmin,
           h.horizon::text as horizon,
           (select count(*) from eventplane.events where tx_id >= h.horizon)::text as waiting
      from (select eventplane.log_horizon(pg_current_snapshot()) as horizon) h`
  return row!
}
