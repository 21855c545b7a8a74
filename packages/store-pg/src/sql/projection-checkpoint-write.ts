import type { TransactionSql } from 'postgres'
import type { Checkpoint } from '@eventplane/core'

/** Writes the checkpoint (and version) in the caller's transaction, the one that writes the output. */
export async function writeProjectionCheckpointSql(
  tx: TransactionSql,
  projection: string,
  version: number,
  c: Checkpoint,
): Promise<void> {
  await tx`
    insert into eventplane.projection_checkpoints (projection, version, tx_id, global_position, updated_at)
    values (${projection}, ${version}, ${c.txId.toString()}::xid8, ${c.position.toString()}::bigint, now())
    on conflict (projection) do update
      set version = excluded.version, tx_id = excluded.tx_id,
          global_position = excluded.global_position, updated_at = excluded.updated_at`
}
