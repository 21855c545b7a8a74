import type { Sql } from 'postgres'

export interface LogHeadRow {
  last_position: string | null
  xmin: string
  oldest_xact_start: Date | null
  oldest_xact_pid: number | null
}

/**
 * The newest position, and what holds the gap-safe read back: the oldest
 * transaction still running anywhere in the cluster (it may be in another database).
 */
export async function logHeadSql(sql: Sql): Promise<LogHeadRow> {
  const [row] = await sql<LogHeadRow[]>`
    select (select max(global_position)::text from eventplane.events) as last_position,
           pg_snapshot_xmin(pg_current_snapshot())::text as xmin,
           a.xact_start as oldest_xact_start, a.pid as oldest_xact_pid
      from (select 1) one
      left join lateral (
        select xact_start, pid from pg_stat_activity
         where backend_xid is not null and pid <> pg_backend_pid()
         order by age(backend_xid) desc limit 1) a on true`
  return row!
}
