import type { Checkpoint } from '@eventplane/core'
import type { TransactionSql } from 'postgres'

/** Moves the rebuild's checkpoint in `tx`, the transaction that writes the shadow output it covers. */
export async function writeProjectionRebuildSql(
  tx: TransactionSql,
  projection: string,
  generation: number,
  c: Checkpoint,
  events: number,
): Promise<void> {
  await tx`
    update eventplane.projection_rebuilds
       set tx_id = ${c.txId.toString()}::xid8, global_position = ${c.position.toString()}::bigint,
           events = events + ${events}, updated_at = now()
     where projection = ${projection} and generation = ${generation}`
}
