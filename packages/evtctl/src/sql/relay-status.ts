import type { Sql } from 'postgres'
import { relayLockKey } from '../relay-lock.ts'

/** One relay: checkpoint, lag and lock holder. */
export interface RelayStatusRow {
  name: string
  /** Null when the relay never stored a checkpoint. */
  tx_id: string | null
  global_position: string | null
  updated_at: Date | null
  /** Committed events after the checkpoint (including ones the gap-safe read still holds back). */
  lag: string
  /** The backend holding the relay's advisory lock in this database (the active relay), if any. */
  lock_pid: number | null
}

/**
 * Every known relay (those with a checkpoint, plus `names`), its checkpoint,
 * lag, and which session holds its advisory lock (see relayLockKey).
 */
export async function relayStatusSql(sql: Sql, names: readonly string[]): Promise<RelayStatusRow[]> {
  const stored = await sql<{ name: string }[]>`select name from eventplane.relay_checkpoints`
  const all = [...new Set([...names, ...stored.map((r) => r.name)])].sort()
  const keys = all.map((name) => ({ name, ...relayLockKey(name) }))
  return sql<RelayStatusRow[]>`
    with known as (
      select * from unnest(${sql.array(keys.map((k) => k.name))}::text[],
                           ${sql.array(keys.map((k) => k.classid))}::text[],
                           ${sql.array(keys.map((k) => k.objid))}::text[]) as k(name, classid, objid)
    )
    select k.name, rc.tx_id::text as tx_id, rc.global_position::text as global_position, rc.updated_at,
           (select count(*) from eventplane.events e
             where (e.tx_id, e.global_position) > (coalesce(rc.tx_id, '0'::xid8), coalesce(rc.global_position, 0)))::text as lag,
           (select l.pid from pg_locks l
             where l.locktype = 'advisory' and l.granted and l.objsubid = 1
               and l.database = (select oid from pg_database where datname = current_database())
               and l.classid = k.classid::oid and l.objid = k.objid::oid
             limit 1) as lock_pid
      from known k left join eventplane.relay_checkpoints rc on rc.name = k.name
     order by k.name`
}
