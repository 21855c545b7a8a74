import type { Sql } from 'postgres'

export interface OpenTransactionRow {
  /** `session`: a client session's; `prepared`: a prepared transaction; `other`: an xid of the snapshot that holds the read back, neither. */
  kind: 'session' | 'prepared' | 'other'
  pid: number | null
  database: string | null
  role: string | null
  application: string | null
  backend_xid: string
  /** The prepared transaction's name (COMMIT/ROLLBACK PREPARED takes it). */
  gid: string | null
  xact_start: Date | null
  age_ms: string | null
  /** Whether it can write into this log, so holds back its gap-safe read: log_horizon's rule (0018, 0021). */
  holds_log: boolean
}

/**
 * Every transaction that holds an xid, each classified by whether it holds
 * back this log's gap-safe read, oldest first; the one place outside the
 * horizon itself that applies the horizon's rule (migrations/0018
 * `eventplane.log_horizon`): an xid holds the read back unless
 * `pg_stat_get_activity`, read after the statement's snapshot, shows it as
 * the `backend_xid` of a session of another database. Listed:
 *
 * - every client session holding an xid, of any database, through
 *   eventplane.open_transactions() (migrations/0007: pid, database, role,
 *   application, start; never query text): another database's are listed
 *   with `holds_log` false;
 * - every prepared transaction (`pg_prepared_xacts`, of any database; no
 *   session; its age counts from PREPARE TRANSACTION): each holds the read
 *   back, as in log_horizon;
 * - every other xid of the snapshot that holds it back: another kind of
 *   process of this database (autovacuum), one without a visible session,
 *   one that ended since the snapshot with rows in this log (one that ended
 *   without any is passed: `eventplane.ended_without_log_rows`, migrations/0021
 *   and 0022, the predicate log_horizon calls). No start time (not visible to
 *   the relay or operator role), so never stuck.
 *
 * As in log_horizon, the sessions are read after the snapshot and afresh
 * (pg_stat_clear_snapshot, in the outer row that the LATERAL side waits
 * for), so a transaction's earlier look cannot pair an xid with a stale
 * database. `test/open-transactions.test.ts` holds this to log_horizon: the oldest
 * holding xid is the horizon.
 */
export function openTransactionsSql(sql: Sql): Promise<OpenTransactionRow[]> {
  return sql.unsafe<OpenTransactionRow[]>(OPEN_TRANSACTIONS_QUERY)
}

/** The statement of openTransactionsSql (no parameters): a test runs it as a cursor. */
export const OPEN_TRANSACTIONS_QUERY = `
    select t.kind, t.pid, t.database, t.role, t.application, t.backend_xid, t.gid, t.xact_start,
           t.age_ms::text as age_ms, t.holds_log
      from (select pg_catalog.pg_stat_clear_snapshot() as cleared, pg_catalog.pg_current_snapshot() as snap,
                   (select d.oid from pg_catalog.pg_database d
                     where d.datname = pg_catalog.current_database()) as db) s,
      lateral (
        with o as (select * from eventplane.open_transactions()),
             p as (select * from pg_catalog.pg_prepared_xacts)
        select c.*,
               not exists (select from pg_catalog.pg_stat_get_activity(null) a
                            where a.backend_xid = c.backend_xid::xid and a.datid <> s.db) as holds_log
          from (
            select 'session' as kind, o.pid, o.database, o.role, o.application, o.backend_xid, null::text as gid,
                   o.xact_start, o.age_ms
              from o
            union all
            select 'prepared', null, p.database::text, p.owner::text, null, p.transaction::text, p.gid, p.prepared,
                   (extract(epoch from pg_catalog.clock_timestamp() - p.prepared) * 1000)::bigint
              from p
            union all
            select 'other', a.pid, d.datname::text, null, null, i.xid::xid::text, null, null, null
              from pg_catalog.pg_snapshot_xip(s.snap) i(xid)
              left join lateral (select g.pid, g.datid from pg_catalog.pg_stat_get_activity(null) g
                                  where g.backend_xid = i.xid::xid order by g.pid limit 1) a on true
              left join pg_catalog.pg_database d on d.oid = a.datid
             where not exists (select from o where o.backend_xid = i.xid::xid::text)
               and not exists (select from p where p.transaction = i.xid::xid)
               and not eventplane.ended_without_log_rows(i.xid)
          ) c
      ) t
     where t.kind <> 'other' or t.holds_log
     order by t.age_ms desc nulls last, t.pid nulls last, t.backend_xid`
