import type { Sql, TransactionSql } from 'postgres'
import {
  type ProjectionCheckpointRow,
  type ProjectionCheckpoint,
  toProjectionCheckpoint,
} from './projection-checkpoint-rows.ts'

/** Creates the projection's checkpoint row at START for `version` when missing; returns what is stored. */
export async function ensureProjectionCheckpointSql(
  sql: Sql | TransactionSql,
  projection: string,
  version: number,
): Promise<ProjectionCheckpoint & { created: boolean }> {
  const inserted = await sql<ProjectionCheckpointRow[]>`
    insert into eventplane.projection_checkpoints (projection, version, tx_id, global_position)
    values (${projection}, ${version}, '0'::xid8, 0)
    on conflict (projection) do nothing
    returning version, generation, tx_id::text, global_position::text`
  if (inserted[0]) return { ...toProjectionCheckpoint(inserted[0]), created: true }
  const [row] = await sql<ProjectionCheckpointRow[]>`
    select version, generation, tx_id::text, global_position::text from eventplane.projection_checkpoints
     where projection = ${projection}`
  return { ...toProjectionCheckpoint(row!), created: false }
}
