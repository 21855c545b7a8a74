import type { Sql } from 'postgres'

export interface OpenTransactionRow {
  pid: number
  database: string | null
  role: string | null
  application: string | null
  backend_xid: string
  xact_start: Date | null
  age_ms: string | null
}

/**
 * Every client transaction in the cluster that holds an xid, oldest first:
 * what holds the gap-safe read back. Without pg_read_all_stats a role sees
 * other users' pid, database, user and xid but not their start; those come back null.
 */
export function openTransactionsSql(sql: Sql): Promise<OpenTransactionRow[]> {
  return sql<OpenTransactionRow[]>`
    select pid, datname::text as database, usename::text as role, application_name as application,
           backend_xid::text as backend_xid, xact_start,
           (extract(epoch from clock_timestamp() - xact_start) * 1000)::bigint::text as age_ms
      from pg_stat_activity
     where backend_xid is not null and pid <> pg_backend_pid()
     order by age(backend_xid) desc, pid`
}
