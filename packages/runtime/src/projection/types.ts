import type { Checkpoint, EventKind, RecordedEvent } from '@eventplane/core'
import { validateCategory, validateName, validateTenant } from '@eventplane/core'
import type { TransactionSql } from '@eventplane/store-pg'

/** Which events a projection sees; an omitted field matches everything. */
export interface ProjectionFilter {
  kinds?: readonly EventKind[]
  categories?: readonly string[]
  tenant?: string
  types?: readonly string[]
}

/**
 * A pure reducer projection: state per `(tenant, key(event))`, stored as
 * jsonb in `eventplane.projection_state`. `apply` must be deterministic and
 * return plain JSON (no undefined, Date, bigint, NaN): a rebuilt projection
 * equals the live one byte for byte only if the reducer is pure.
 */
export interface ReducerProjection<S = unknown> {
  readonly name: string
  /** Bumping it makes the next runner drop the output and rebuild. */
  readonly version: number
  initial(): S
  apply(state: S, event: RecordedEvent): S
  /** The state an event belongs to (e.g. its stream id); `null` skips the event. */
  key(event: RecordedEvent): string | null
  readonly filter?: ProjectionFilter
}

/**
 * A projection writing its own tables inside the runner's transaction, which
 * also stores the checkpoint. Its statements name the tables **without a
 * schema**: the runtime sets `search_path` to `eventplane_views` (the live
 * output readers query) or, during a rebuild, to a shadow schema whose tables
 * replace the live ones in one transaction when the rebuild completes. `apply`
 * must be deterministic; `digestQuery` selects every output row in a total order.
 */
export interface SqlProjection {
  readonly name: string
  readonly version: number
  /** Creates the output tables; idempotent (`create table if not exists`). */
  setup(tx: TransactionSql): Promise<void>
  apply(tx: TransactionSql, event: RecordedEvent): Promise<void>
  /** Drops every output table (`drop table if exists …`); idempotent. */
  drop(tx: TransactionSql): Promise<void>
  /** A SELECT over the whole output with an ORDER BY that makes the row order total. */
  readonly digestQuery: string
  readonly filter?: ProjectionFilter
}

export type Projection<S = unknown> = ReducerProjection<S> | SqlProjection

export function isSqlProjection(p: Projection<never> | Projection): p is SqlProjection {
  return typeof (p as SqlProjection).setup === 'function'
}

/** Identity helper that checks names and infers the state type. */
export function defineReducerProjection<S>(p: ReducerProjection<S>): ReducerProjection<S> {
  checkProjection(p)
  return p
}

/** Identity helper that checks names. */
export function defineSqlProjection(p: SqlProjection): SqlProjection {
  checkProjection(p)
  return p
}

export function checkProjection(p: { name: string; version: number; filter?: ProjectionFilter }): void {
  validateName('projection', p.name)
  if (!Number.isSafeInteger(p.version) || p.version < 1)
    throw new RangeError(`projection ${p.name}: version must be a positive integer`)
  if (p.filter?.tenant !== undefined) validateTenant(p.filter.tenant)
  for (const c of p.filter?.categories ?? []) validateCategory(c)
}

export function matchesFilter(filter: ProjectionFilter | undefined, e: RecordedEvent): boolean {
  if (filter === undefined) return true
  if (filter.kinds && !filter.kinds.includes(e.kind)) return false
  if (filter.categories && !filter.categories.includes(e.stream.category)) return false
  if (filter.tenant !== undefined && filter.tenant !== e.tenant_id) return false
  if (filter.types && !filter.types.includes(e.type)) return false
  return true
}

/** The checkpoint right after `e`. */
export function checkpointOf(e: RecordedEvent): Checkpoint {
  return { txId: e.tx_id, position: e.global_position }
}

/** What a runner reports while it works. `rate` is events per second since the phase began. */
export interface ProjectionProgress {
  projection: string
  phase: 'catch-up' | 'rebuild' | 'live'
  /** Events read (matching or not) since the phase began. */
  events: number
  /** Events the phase expects to read in all, when known. */
  total?: number
  rate: number
  checkpoint: Checkpoint
}

/** What a commit hook is told: the checkpoint just committed and the events it covered. */
export interface CommitInfo {
  projection: string
  checkpoint: Checkpoint
  events: number
  phase: ProjectionProgress['phase']
}
