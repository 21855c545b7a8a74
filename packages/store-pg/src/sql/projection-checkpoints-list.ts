import type { Sql } from 'postgres'
import type { ProjectionCheckpointRow } from './projection-checkpoint-rows.ts'

export interface ProjectionCheckpointListRow extends ProjectionCheckpointRow {
  projection: string
  updated_at: Date
}

/** Every projection checkpoint, by name (needs the projector or operator role). */
export function listProjectionCheckpointsSql(sql: Sql): Promise<ProjectionCheckpointListRow[]> {
  return sql<ProjectionCheckpointListRow[]>`
    select projection, version, generation, tx_id::text, global_position::text, updated_at
      from eventplane.projection_checkpoints order by projection`
}
