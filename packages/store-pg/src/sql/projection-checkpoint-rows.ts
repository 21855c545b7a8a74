import type { Checkpoint } from '@eventplane/core'

/** A projection's stored checkpoint: the version its output was built by and the last event applied. */
export interface ProjectionCheckpoint {
  version: number
  /** The generation of output this checkpoint covers: readers see only this one. */
  generation: number
  checkpoint: Checkpoint
}

/** A row of eventplane.projection_checkpoints as the statements here return it. */
export interface ProjectionCheckpointRow {
  version: number
  generation: number
  tx_id: string
  global_position: string
}

export const toProjectionCheckpoint = (r: ProjectionCheckpointRow): ProjectionCheckpoint => ({
  version: r.version,
  generation: r.generation,
  checkpoint: { txId: BigInt(r.tx_id), position: BigInt(r.global_position) },
})
