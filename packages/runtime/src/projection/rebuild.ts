import type { Checkpoint } from '@eventplane/core'
import type { Sql } from 'postgres'
import { type ProjectionDigest, projectionDigest } from './digest.ts'
import { type EngineOptions, ProjectionEngine } from './engine.ts'
import type { Projection } from './types.ts'

export interface RebuildOptions extends EngineOptions {
  projection: Projection
  /** A pool connected as `eventplane_projector`, at least 3 connections. */
  sql: Sql
  signal?: AbortSignal
  /** Compute the digest of the rebuilt output (default true). */
  digest?: boolean
}

export interface RebuildResult {
  projection: string
  version: number
  events: number
  elapsedMs: number
  /** Events per second. */
  rate: number
  checkpoint: Checkpoint
  digest?: ProjectionDigest
}

/**
 * Drops a projection's output and checkpoint and replays the log from the
 * start, many events per transaction, until caught up; then hashes the
 * output. Run it with the projection's live runner stopped (or start the
 * runner with `rebuild: true`, which also goes live afterwards); a runner
 * left running is not corrupted, it notices the moved checkpoint and resyncs.
 */
export async function rebuildProjection(options: RebuildOptions): Promise<RebuildResult> {
  const engine = new ProjectionEngine(options.projection, options.sql, options)
  const started = performance.now()
  await engine.init()
  await engine.drop()
  const events = await engine.catchUp('rebuild', options.signal)
  const elapsedMs = performance.now() - started
  const digest = options.digest === false ? undefined : await projectionDigest(options.sql, options.projection)
  return {
    projection: options.projection.name,
    version: options.projection.version,
    events,
    elapsedMs,
    rate: elapsedMs > 0 ? (events * 1000) / elapsedMs : 0,
    checkpoint: engine.checkpoint,
    ...(digest ? { digest } : {}),
  }
}
