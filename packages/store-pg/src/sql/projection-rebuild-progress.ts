import type { Sql } from 'postgres'
import {
  type ProjectionRebuild,
  type ProjectionRebuildRow,
  REBUILD_COLUMNS,
  toProjectionRebuild,
} from './projection-rebuild-rows.ts'

/** The rebuild of `projection` in progress, if any (positions and times only; any role that may read state). */
export async function projectionRebuildProgressSql(
  sql: Sql,
  projection: string,
): Promise<ProjectionRebuild | undefined> {
  const [row] = await sql<ProjectionRebuildRow[]>`
    select ${sql.unsafe(REBUILD_COLUMNS)}
      from eventplane.projection_rebuild_progress(${projection})`
  return row ? toProjectionRebuild(row) : undefined
}
