import type { Sql } from 'postgres'

/** One projection checkpoint and its lag. */
export interface ProjectionStatusRow {
  projection: string
  version: number
  tx_id: string
  global_position: string
  updated_at: Date
  /** Events of every tenant after the checkpoint; an upper bound (the projection's filter may skip some). */
  lag: string
}

/** Every projection checkpoint with its lag behind the log (needs the operator role). */
export function projectionStatusSql(sql: Sql): Promise<ProjectionStatusRow[]> {
  return sql<ProjectionStatusRow[]>`
    select p.projection, p.version, p.tx_id::text as tx_id, p.global_position::text as global_position, p.updated_at,
           (select count(*) from eventplane.events e
             where (e.tx_id, e.global_position) > (p.tx_id, p.global_position))::text as lag
      from eventplane.projection_checkpoints p
     order by p.projection`
}
