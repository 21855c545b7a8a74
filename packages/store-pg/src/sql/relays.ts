import type { Sql } from 'postgres'

/** One relay as the status sees it: its checkpoint (if stored) and the live session holding its lease (if any). */
export interface RelayRow {
  name: string
  tx_id: string | null
  global_position: string | null
  updated_at: Date | null
  holder_pid: number | null
}

/** Every relay with a checkpoint or a lease, plus `names`, in name order (needs the relay or operator role). */
export function relaysSql(sql: Sql, names: readonly string[]): Promise<RelayRow[]> {
  return sql<RelayRow[]>`
    with known as (
      select name from eventplane.relay_checkpoints
      union select name from eventplane.relay_leases
      union select unnest(${sql.array([...names])}::text[])
    )
    select k.name, rc.tx_id::text as tx_id, rc.global_position::text as global_position, rc.updated_at,
           case when eventplane.backend_alive(l.holder_pid, l.holder_started) then l.holder_pid end as holder_pid
      from known k
      left join eventplane.relay_checkpoints rc on rc.name = k.name
      left join eventplane.relay_leases l on l.name = k.name
     order by k.name`
}
