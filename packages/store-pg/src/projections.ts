import type { Sql, TransactionSql } from 'postgres'
import { type Checkpoint, START } from '@eventplane/core'
import { typedCursor, typedPgErrors } from './pg-errors.ts'
import { countEventsAfterSql } from './sql/count-events-after.ts'
import { type EventCountFilter, countEventsBetweenSql } from './sql/count-events-between.ts'
import { ensureProjectionCheckpointSql } from './sql/projection-checkpoint-ensure.ts'
import { lockProjectionCheckpointSql } from './sql/projection-checkpoint-lock.ts'
import { readProjectionCheckpointSql } from './sql/projection-checkpoint-read.ts'
import type { ProjectionCheckpoint } from './sql/projection-checkpoint-rows.ts'
import { writeProjectionCheckpointSql } from './sql/projection-checkpoint-write.ts'
import { lockProjectionRebuildSql } from './sql/projection-rebuild-lock.ts'
import { projectionRebuildProgressSql } from './sql/projection-rebuild-progress.ts'
import type { ProjectionRebuild } from './sql/projection-rebuild-rows.ts'
import { startProjectionRebuildSql } from './sql/projection-rebuild-start.ts'
import { swapProjectionRebuildSql } from './sql/projection-rebuild-swap.ts'
import { writeProjectionRebuildSql } from './sql/projection-rebuild-write.ts'
import {
  VIEWS_SCHEMA,
  dropStaleProjectionShadowsSql,
  ensureProjectionShadowSql,
  moveShadowTablesSql,
  shadowTablesSql,
  useProjectionSchemaSql,
} from './sql/projection-shadow.ts'
import { deleteStaleProjectionStatesSql } from './sql/projection-states-delete.ts'
import { type ProjectionStateRow, loadProjectionStatesSql } from './sql/projection-states-load.ts'
import { projectionStatesOfTenantSql } from './sql/projection-states-of-tenant.ts'
import { saveProjectionStatesSql } from './sql/projection-states-save.ts'
import { type ProjectionStateText, scanProjectionStatesSql } from './sql/projection-states-scan.ts'
import { withTenant } from './with-tenant.ts'

// Projection checkpoints, reducer state and rebuilds (migrations/0003, 0012). The runtime keeps
// a projection's checkpoint in the transaction that writes its output; these
// functions take that transaction where they write. They need
// eventplane_projector, except where noted.

/** Creates `projection`'s checkpoint row at START for `version` when missing; returns what is stored. */
export function ensureProjectionCheckpoint(
  sql: Sql | TransactionSql,
  projection: string,
  version: number,
): Promise<ProjectionCheckpoint & { created: boolean }> {
  return typedPgErrors(() => ensureProjectionCheckpointSql(sql, projection, version))
}

/** The stored checkpoint, row-locked until `tx` ends: two writers of one projection never both commit. */
export function lockProjectionCheckpoint(
  tx: TransactionSql,
  projection: string,
): Promise<ProjectionCheckpoint | undefined> {
  return typedPgErrors(() => lockProjectionCheckpointSql(tx, projection))
}

/** The stored checkpoint of `projection`, if any (also for the operator role). */
export function readProjectionCheckpoint(sql: Sql, projection: string): Promise<ProjectionCheckpoint | undefined> {
  return typedPgErrors(() => readProjectionCheckpointSql(sql, projection))
}

/** Writes the checkpoint (and version) in `tx`, the transaction that writes the output it covers. */
export function writeProjectionCheckpoint(
  tx: TransactionSql,
  projection: string,
  version: number,
  c: Checkpoint = START,
): Promise<void> {
  return typedPgErrors(() => writeProjectionCheckpointSql(tx, projection, version, c))
}

/**
 * How many committed events lie after `after` in the global order (of one
 * tenant, or of every tenant the role may read): progress totals and lag.
 */
export function countEventsAfter(sql: Sql, after: Checkpoint, tenant?: string): Promise<number> {
  return typedPgErrors(() => countEventsAfterSql(sql, after, tenant))
}

/**
 * How many committed events matching `filter` lie in `(after, upTo]` of the
 * global order. Run in a projection's commit transaction, it proves a live
 * batch skipped nothing: the relay publishes an event only once every
 * earlier one is committed, so all of them are visible here.
 */
export function countEventsBetween(
  sql: Sql | TransactionSql,
  after: Checkpoint,
  upTo: Checkpoint,
  filter?: EventCountFilter,
): Promise<number> {
  return typedPgErrors(() => countEventsBetweenSql(sql, after, upTo, filter))
}

/**
 * The stored states of `keys` in one generation of a reducer projection; keys
 * without a stored state are missing from the result.
 */
export function loadProjectionStates<S>(
  sql: Sql,
  projection: string,
  generation: number,
  keys: readonly { tenant: string; key: string }[],
): Promise<ProjectionStateRow<S>[]> {
  return typedPgErrors(() => loadProjectionStatesSql<S>(sql, projection, generation, keys))
}

/** Upserts reducer states of one generation in `tx` (one statement), the transaction that also moves its checkpoint. */
export function saveProjectionStates(
  tx: TransactionSql,
  projection: string,
  generation: number,
  states: readonly { tenant: string; key: string; state: unknown }[],
): Promise<void> {
  return typedPgErrors(() => saveProjectionStatesSql(tx, projection, generation, states))
}

/**
 * Deletes the states of `projection` that no one reads or writes any more
 * (generations neither live nor being rebuilt), `batchRows` per transaction;
 * returns how many were deleted.
 */
export async function deleteStaleProjectionStates(sql: Sql, projection: string, batchRows = 10_000): Promise<number> {
  let total = 0
  for (;;) {
    const n = await typedPgErrors(() => deleteStaleProjectionStatesSql(sql, projection, batchRows))
    total += n
    if (n < batchRows) return total
  }
}

/**
 * In `tx`: the rebuild of `projection` to continue (same version, unless
 * `restart`) or a new one at START in a fresh generation. The rebuild row is
 * locked until `tx` ends. The live checkpoint row must exist.
 */
export function startProjectionRebuild(
  tx: TransactionSql,
  projection: string,
  version: number,
  restart: boolean,
): Promise<ProjectionRebuild & { resumed: boolean }> {
  return typedPgErrors(() => startProjectionRebuildSql(tx, projection, version, restart))
}

/** The rebuild's row, locked until `tx` ends: its writers never both commit. */
export function lockProjectionRebuild(tx: TransactionSql, projection: string): Promise<ProjectionRebuild | undefined> {
  return typedPgErrors(() => lockProjectionRebuildSql(tx, projection))
}

/** Moves the rebuild's checkpoint in `tx`, the transaction writing the shadow output it covers. */
export function writeProjectionRebuild(
  tx: TransactionSql,
  projection: string,
  generation: number,
  c: Checkpoint,
  events: number,
): Promise<void> {
  return typedPgErrors(() => writeProjectionRebuildSql(tx, projection, generation, c, events))
}

/** In `tx`: the rebuild's generation, version and checkpoint become the live ones, and the rebuild row goes. */
export function swapProjectionRebuild(tx: TransactionSql, projection: string, generation: number): Promise<void> {
  return typedPgErrors(() => swapProjectionRebuildSql(tx, projection, generation))
}

/** The rebuild of `projection` in progress, if any (reader, operator or projector). */
export function projectionRebuildProgress(sql: Sql, projection: string): Promise<ProjectionRebuild | undefined> {
  return typedPgErrors(() => projectionRebuildProgressSql(sql, projection))
}

/**
 * Every reducer state of one generation of `projection` (default: the live
 * one) in one total order (tenant, then key, byte order), with the state as
 * jsonb's canonical text, in batches read through a cursor: what a digest hashes.
 */
export async function* scanProjectionStates(
  sql: Sql,
  projection: string,
  batchRows = 1000,
  generation?: number,
): AsyncGenerator<ProjectionStateText[]> {
  yield* typedCursor(scanProjectionStatesSql(sql, projection, generation ?? null, batchRows))
}

/**
 * One tenant's reducer states of `projection` (or of one key), by key, read
 * in a transaction set to that tenant: with the reader role, RLS shows no
 * other tenant's rows.
 */
export function readProjectionStates(
  sql: Sql,
  projection: string,
  tenant: string,
  key?: string,
): Promise<{ key: string; state: unknown }[]> {
  return withTenant(sql, tenant, (tx) => projectionStatesOfTenantSql(tx, projection, tenant, key ?? null))
}

export { VIEWS_SCHEMA }

/** The shadow schema (created when missing) a SQL projection's rebuild of `generation` builds its tables in. */
export function ensureProjectionShadow(sql: Sql, projection: string, generation: number): Promise<string> {
  return typedPgErrors(() => ensureProjectionShadowSql(sql, projection, generation))
}

/** Drops `projection`'s shadow schemas that no rebuild writes any more (discarded or swapped ones). */
export function dropStaleProjectionShadows(sql: Sql, projection: string): Promise<number> {
  return typedPgErrors(() => dropStaleProjectionShadowsSql(sql, projection))
}

/** Points the rest of `tx` at `schema` (eventplane_views, or a shadow): where unqualified table names resolve. */
export function useProjectionSchema(tx: TransactionSql, schema: string): Promise<void> {
  return typedPgErrors(() => useProjectionSchemaSql(tx, schema))
}

/** The tables a shadow schema holds. */
export function shadowTables(sql: Sql | TransactionSql, schema: string): Promise<string[]> {
  return typedPgErrors(() => shadowTablesSql(sql, schema))
}

/** In `tx` (the swap): moves a shadow's tables into eventplane_views; returns how many. */
export function moveShadowTables(tx: TransactionSql, schema: string): Promise<number> {
  return typedPgErrors(() => moveShadowTablesSql(tx, schema))
}
