import type { Sql } from 'postgres'
import {
  type ProjectionCheckpointRow,
  type ProjectionCheckpoint,
  toProjectionCheckpoint,
} from './projection-checkpoint-rows.ts'

/** The stored checkpoint of `projection`, if it has one. */
export async function readProjectionCheckpointSql(
  sql: Sql,
  projection: string,
): Promise<ProjectionCheckpoint | undefined> {
  const [row] = await sql<ProjectionCheckpointRow[]>`
    select version, generation, tx_id::text, global_position::text from eventplane.projection_checkpoints
     where projection = ${projection}`
  return row ? toProjectionCheckpoint(row) : undefined
}
