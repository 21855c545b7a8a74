import type { Sql, TransactionSql } from 'postgres'
import { type Checkpoint, START } from '@eventplane/core'
import { typedPgErrors } from './pg-errors.ts'
import { countEventsAfterSql } from './sql/count-events-after.ts'
import { type EventCountFilter, countEventsBetweenSql } from './sql/count-events-between.ts'
import { ensureProjectionCheckpointSql } from './sql/projection-checkpoint-ensure.ts'
import { lockProjectionCheckpointSql } from './sql/projection-checkpoint-lock.ts'
import { readProjectionCheckpointSql } from './sql/projection-checkpoint-read.ts'
import type { ProjectionCheckpoint } from './sql/projection-checkpoint-rows.ts'
import { writeProjectionCheckpointSql } from './sql/projection-checkpoint-write.ts'
import { deleteProjectionStatesSql } from './sql/projection-states-delete.ts'
import { type ProjectionStateRow, loadProjectionStatesSql } from './sql/projection-states-load.ts'
import { projectionStatesOfTenantSql } from './sql/projection-states-of-tenant.ts'
import { saveProjectionStatesSql } from './sql/projection-states-save.ts'
import { type ProjectionStateText, scanProjectionStatesSql } from './sql/projection-states-scan.ts'
import { withTenant } from './with-tenant.ts'

// Projection checkpoints and reducer state (migrations/0003). The runtime keeps
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

/** The stored states of `keys` of a reducer projection; keys without a stored state are missing from the result. */
export function loadProjectionStates<S>(
  sql: Sql,
  projection: string,
  keys: readonly { tenant: string; key: string }[],
): Promise<ProjectionStateRow<S>[]> {
  return typedPgErrors(() => loadProjectionStatesSql<S>(sql, projection, keys))
}

/** Upserts reducer states in `tx` (one statement), the transaction that also moves the checkpoint. */
export function saveProjectionStates(
  tx: TransactionSql,
  projection: string,
  states: readonly { tenant: string; key: string; state: unknown }[],
): Promise<void> {
  return typedPgErrors(() => saveProjectionStatesSql(tx, projection, states))
}

/** Deletes every reducer state of `projection` in `tx` (a rebuild drops its output). */
export function deleteProjectionStates(tx: TransactionSql, projection: string): Promise<void> {
  return typedPgErrors(() => deleteProjectionStatesSql(tx, projection))
}

/**
 * Every reducer state of `projection` in one total order (tenant, then key,
 * byte order), with the state as jsonb's canonical text, in batches read
 * through a cursor: what a digest hashes.
 */
export async function* scanProjectionStates(
  sql: Sql,
  projection: string,
  batchRows = 1000,
): AsyncGenerator<ProjectionStateText[]> {
  const cursor = scanProjectionStatesSql(sql, projection, batchRows)[Symbol.asyncIterator]()
  try {
    for (;;) {
      const next = await typedPgErrors(() => cursor.next())
      if (next.done) return
      yield next.value
    }
  } finally {
    await cursor.return?.()
  }
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
