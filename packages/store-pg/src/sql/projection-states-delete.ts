import type { TransactionSql } from 'postgres'

/** Deletes every state of `projection` (a rebuild), in the caller's transaction. */
export async function deleteProjectionStatesSql(tx: TransactionSql, projection: string): Promise<void> {
  await tx`delete from eventplane.projection_state where projection = ${projection}`
}
