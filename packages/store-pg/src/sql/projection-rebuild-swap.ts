import type { TransactionSql } from 'postgres'

/**
 * In `tx`: makes the rebuild's generation the live one, with its version and
 * checkpoint, and forgets the rebuild: readers switch from the previous
 * complete output to the new one at commit, never in between.
 */
export async function swapProjectionRebuildSql(
  tx: TransactionSql,
  projection: string,
  generation: number,
): Promise<void> {
  await tx`
    update eventplane.projection_checkpoints c
       set version = r.version, generation = r.generation, tx_id = r.tx_id,
           global_position = r.global_position, updated_at = now()
      from eventplane.projection_rebuilds r
     where c.projection = ${projection} and r.projection = ${projection} and r.generation = ${generation}`
  await tx`delete from eventplane.projection_rebuilds where projection = ${projection} and generation = ${generation}`
}
