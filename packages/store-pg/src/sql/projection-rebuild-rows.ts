import type { Checkpoint } from '@eventplane/core'

/** A rebuild in progress: the generation it writes, the version building it, how far it got. */
export interface ProjectionRebuild {
  generation: number
  version: number
  checkpoint: Checkpoint
  /** Events read so far (over every run of this rebuild). */
  events: number
  startedAt: Date
  updatedAt: Date
}

/** The columns the statements here select or return (nested with `sql.unsafe`: constant text). */
export const REBUILD_COLUMNS =
  'generation, version, tx_id::text, global_position::text, events::text, started_at, updated_at'

/** A row of eventplane.projection_rebuilds as the statements here return it. */
export interface ProjectionRebuildRow {
  generation: number
  version: number
  tx_id: string
  global_position: string
  events: string
  started_at: Date
  updated_at: Date
}

export const toProjectionRebuild = (r: ProjectionRebuildRow): ProjectionRebuild => ({
  generation: r.generation,
  version: r.version,
  checkpoint: { txId: BigInt(r.tx_id), position: BigInt(r.global_position) },
  events: Number(r.events),
  startedAt: r.started_at,
  updatedAt: r.updated_at,
})
