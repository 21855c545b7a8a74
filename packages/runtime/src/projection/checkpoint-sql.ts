import { type Checkpoint, START } from '@eventplane/core'
import type { Sql, TransactionSql } from 'postgres'

/** A projection's stored checkpoint row. */
export interface StoredCheckpoint {
  version: number
  checkpoint: Checkpoint
}

interface Row {
  version: number
  tx_id: string
  global_position: string
}

const toStored = (r: Row): StoredCheckpoint => ({
  version: r.version,
  checkpoint: { txId: BigInt(r.tx_id), position: BigInt(r.global_position) },
})

/** Creates the row at START for `version` when missing; returns what is stored. */
export async function ensureCheckpointRow(
  sql: Sql | TransactionSql,
  projection: string,
  version: number,
): Promise<StoredCheckpoint & { created: boolean }> {
  const inserted = await sql<Row[]>`
    insert into eventplane.projection_checkpoints (projection, version, tx_id, global_position)
    values (${projection}, ${version}, '0'::xid8, 0)
    on conflict (projection) do nothing
    returning version, tx_id::text, global_position::text`
  if (inserted[0]) return { ...toStored(inserted[0]), created: true }
  const [row] = await sql<Row[]>`
    select version, tx_id::text, global_position::text from eventplane.projection_checkpoints where projection = ${projection}`
  return { ...toStored(row!), created: false }
}

/** The stored checkpoint, locked until the transaction ends (serializes writers of one projection). */
export async function lockCheckpoint(tx: TransactionSql, projection: string): Promise<StoredCheckpoint | undefined> {
  const [row] = await tx<Row[]>`
    select version, tx_id::text, global_position::text from eventplane.projection_checkpoints
     where projection = ${projection} for update`
  return row ? toStored(row) : undefined
}

export async function readCheckpoint(sql: Sql, projection: string): Promise<StoredCheckpoint | undefined> {
  const [row] = await sql<Row[]>`
    select version, tx_id::text, global_position::text from eventplane.projection_checkpoints where projection = ${projection}`
  return row ? toStored(row) : undefined
}

/** Writes the checkpoint (and version), in the caller's transaction. */
export async function writeCheckpoint(
  tx: TransactionSql,
  projection: string,
  version: number,
  c: Checkpoint = START,
): Promise<void> {
  await tx`
    insert into eventplane.projection_checkpoints (projection, version, tx_id, global_position, updated_at)
    values (${projection}, ${version}, ${c.txId.toString()}::xid8, ${c.position.toString()}::bigint, now())
    on conflict (projection) do update
      set version = excluded.version, tx_id = excluded.tx_id,
          global_position = excluded.global_position, updated_at = excluded.updated_at`
}

/** How many events lie after `after` in the global order (the progress total). */
export async function countEventsAfter(sql: Sql, after: Checkpoint, tenant?: string): Promise<number> {
  const [row] =
    tenant === undefined
      ? await sql<{ n: string }[]>`
        select count(*)::text as n from eventplane.events
         where (tx_id, global_position) > (${after.txId.toString()}::xid8, ${after.position.toString()}::bigint)`
      : await sql<{ n: string }[]>`
        select count(*)::text as n from eventplane.events
         where (tx_id, global_position) > (${after.txId.toString()}::xid8, ${after.position.toString()}::bigint)
           and tenant_id = ${tenant}`
  return Number(row!.n)
}
