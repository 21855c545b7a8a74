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
 * what holds the gap-safe read back. Through eventplane.open_transactions()
 * (migrations/0007), which sees every session's start but returns no query text.
 */
export function openTransactionsSql(sql: Sql): Promise<OpenTransactionRow[]> {
  return sql<OpenTransactionRow[]>`
    select pid, database, role, application, backend_xid, xact_start, age_ms::text as age_ms from eventplane.open_transactions()`
}
