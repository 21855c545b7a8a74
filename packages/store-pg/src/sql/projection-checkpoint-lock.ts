import type { TransactionSql } from 'postgres'
import {
  type ProjectionCheckpointRow,
  type ProjectionCheckpoint,
  toProjectionCheckpoint,
} from './projection-checkpoint-rows.ts'

/** The stored checkpoint, row-locked until `tx` ends (serializes the writers of one projection). */
export async function lockProjectionCheckpointSql(
  tx: TransactionSql,
  projection: string,
): Promise<ProjectionCheckpoint | undefined> {
  const [row] = await tx<ProjectionCheckpointRow[]>`
    select version, generation, tx_id::text, global_position::text from eventplane.projection_checkpoints
     where projection = ${projection} for update`
  return row ? toProjectionCheckpoint(row) : undefined
}
