import type { Sql } from 'postgres'
import { relayLockKey } from '../relay-lock-key.ts'

/** One relay as the status sees it: its checkpoint (if stored) and the session holding its lock (if any). */
export interface RelayRow {
  name: string
  tx_id: string | null
  global_position: string | null
  updated_at: Date | null
  holder_pid: number | null
}

/** Every relay with a checkpoint, plus `names`, in name order, and which session holds its advisory lock. */
export async function relaysSql(sql: Sql, names: readonly string[]): Promise<RelayRow[]> {
  const stored = await sql<{ name: string }[]>`select name from eventplane.relay_checkpoints`
  const all = [...new Set([...names, ...stored.map((r) => r.name)])].sort()
  const keys = all.map((name) => ({ name, ...relayLockKey(name) }))
  return sql<RelayRow[]>`
    with known as (
      select * from unnest(${sql.array(keys.map((k) => k.name))}::text[],
                           ${sql.array(keys.map((k) => k.classid))}::text[],
                           ${sql.array(keys.map((k) => k.objid))}::text[]) as k(name, classid, objid)
    )
    select k.name, rc.tx_id::text as tx_id, rc.global_position::text as global_position, rc.updated_at,
           (select l.pid from pg_locks l
             where l.locktype = 'advisory' and l.granted and l.objsubid = 1
               and l.database = (select oid from pg_database where datname = current_database())
               and l.classid = k.classid::oid and l.objid = k.objid::oid
             limit 1) as holder_pid
      from known k left join eventplane.relay_checkpoints rc on rc.name = k.name
     order by k.name`
}
