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
