import type { TransactionSql } from 'postgres'
import {
  type ProjectionRebuild,
  type ProjectionRebuildRow,
  REBUILD_COLUMNS,
  toProjectionRebuild,
} from './projection-rebuild-rows.ts'

/** The rebuild in progress, row-locked until `tx` ends (serializes the writers of one rebuild). */
export async function lockProjectionRebuildSql(
  tx: TransactionSql,
  projection: string,
): Promise<ProjectionRebuild | undefined> {
  const [row] = await tx<ProjectionRebuildRow[]>`
    select ${tx.unsafe(REBUILD_COLUMNS)}
      from eventplane.projection_rebuilds where projection = ${projection} for update`
  return row ? toProjectionRebuild(row) : undefined
}
