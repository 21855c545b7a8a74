import type { Sql } from 'postgres'

export interface TerminatedRow {
  pid: number
  role: string | null
  backend_xid: string
  age_ms: string
  terminated: boolean
}

/**
 * Terminates the non-superuser sessions of this database whose transaction
 * holds an xid and began more than `olderThanMs` ago (at least 1000), through
 * eventplane.terminate_stuck_transactions (owned by eventplane_guard, which
 * holds pg_signal_backend). Returns them.
 */
export function terminateStuckTransactionsSql(sql: Sql, olderThanMs: number): Promise<TerminatedRow[]> {
  return sql<TerminatedRow[]>`
    select pid, role, backend_xid, age_ms::text as age_ms, terminated
      from eventplane.terminate_stuck_transactions(make_interval(secs => ${olderThanMs / 1000}))`
}
