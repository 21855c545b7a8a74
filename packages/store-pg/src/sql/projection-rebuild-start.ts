import type { TransactionSql } from 'postgres'
import { lockProjectionRebuildSql } from './projection-rebuild-lock.ts'
import {
  type ProjectionRebuild,
  type ProjectionRebuildRow,
  REBUILD_COLUMNS,
  toProjectionRebuild,
} from './projection-rebuild-rows.ts'

/**
 * In `tx`: the rebuild of `projection` to continue, or a new one. A stored
 * rebuild of the same version is resumed unless `restart`; otherwise (none,
 * another version, or `restart`) a new one starts at START in a generation
 * above every generation stored. Locks the rebuild row until `tx` ends, so
 * two replays of one projection never both start. The live checkpoint row must exist.
 */
export async function startProjectionRebuildSql(
  tx: TransactionSql,
  projection: string,
  version: number,
  restart: boolean,
): Promise<ProjectionRebuild & { resumed: boolean }> {
  const current = await lockProjectionRebuildSql(tx, projection)
  if (current && current.version === version && !restart) return { ...current, resumed: true }
  const [row] = await tx<ProjectionRebuildRow[]>`
    insert into eventplane.projection_rebuilds as r (projection, generation, version, tx_id, global_position)
    select ${projection}, 1 + greatest(
             (select c.generation from eventplane.projection_checkpoints c where c.projection = ${projection}),
             (select max(s.generation) from eventplane.projection_state s where s.projection = ${projection}),
             ${current?.generation ?? 0}::int), ${version}, '0'::xid8, 0
    on conflict (projection) do update
      set generation = excluded.generation, version = excluded.version, tx_id = excluded.tx_id,
          global_position = excluded.global_position, events = 0, started_at = now(), updated_at = now()
    returning ${tx.unsafe(REBUILD_COLUMNS)}`
  return { ...toProjectionRebuild(row!), resumed: false }
}
