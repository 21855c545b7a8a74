import type { Checkpoint } from '@eventplane/core'
import type { Sql } from '@eventplane/store-pg'
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
  /** Throw an interrupted rebuild away and start from scratch (default: resume it). */
  restart?: boolean
}

export interface RebuildResult {
  projection: string
  version: number
  /** The generation now live. */
  generation: number
  /** True when an interrupted rebuild was continued rather than started again. */
  resumed: boolean
  /** Events read by this call (an interrupted run's are in `eventsBefore`). */
  events: number
  eventsBefore: number
  elapsedMs: number
  /** Events per second. */
  rate: number
  checkpoint: Checkpoint
  digest?: ProjectionDigest
}

/**
 * Replays the log from the start into a new generation of a reducer
 * projection's output (a shadow), many events per transaction, and swaps it
 * in as the live output in one transaction once caught up; then hashes the
 * output. Until the swap readers see the previous complete output. An
 * interrupted rebuild (signal, crash) is resumed by the next call unless
 * `restart`. A SQL projection's tables are rebuilt in a shadow schema and
 * swapped in the same way. A live runner left running is not corrupted: it
 * notices the moved checkpoint and resyncs.
 */
export async function rebuildProjection(options: RebuildOptions): Promise<RebuildResult> {
  const engine = new ProjectionEngine(options.projection, options.sql, options)
  const started = performance.now()
  await engine.init()
  const { events, resumed, eventsBefore } = await engine.rebuild(options.signal, options.restart === true)
  const elapsedMs = performance.now() - started
  const digest = options.digest === false ? undefined : await projectionDigest(options.sql, options.projection)
  return {
    projection: options.projection.name,
    version: options.projection.version,
    generation: engine.generation,
    resumed,
    events,
    eventsBefore,
    elapsedMs,
    rate: elapsedMs > 0 ? (events * 1000) / elapsedMs : 0,
    checkpoint: engine.checkpoint,
    ...(digest ? { digest } : {}),
  }
}
