import type { Sql } from 'postgres'

/** Result of heldBackSql. */
export interface HeldBackRow {
  /** Committed events the gap-safe read cannot return yet (their tx_id is at or after the snapshot xmin). */
  waiting: string
}

/** How many committed events wait behind the oldest running transaction (needs a cross-tenant role). */
export async function heldBackSql(sql: Sql): Promise<HeldBackRow> {
  const [row] = await sql<HeldBackRow[]>`
    select count(*)::text as waiting from eventplane.events
     where tx_id >= pg_snapshot_xmin(pg_current_snapshot())`
  return row!
}

/** One pg_stat_activity row, as far as the caller may see it. */
export interface BackendRow {
  pid: number
  datname: string | null
  usename: string | null
  application_name: string | null
  backend_xid: string | null
  state: string | null
}

/**
 * What pg_stat_activity shows about one backend. Without pg_read_all_stats a
 * role sees other users' pid, database, user and xid but not their state or
 * start time; those come back null and `status` says "unknown".
 */
export async function backendSql(sql: Sql, pid: number): Promise<BackendRow | undefined> {
  const [row] = await sql<BackendRow[]>`
    select pid, datname, usename, application_name, backend_xid::text as backend_xid, state
      from pg_stat_activity where pid = ${pid}`
  return row
}
