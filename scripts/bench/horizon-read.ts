/**
 * What the horizon benchmarks (log-horizon, snapshot-horizon-cpu) share: the log they read and the relay's read
 * with the horizon predicate swapped in.
 */
import type { Sql } from '@eventplane/store-pg'
import { type HeldXid, bulkLoadEvents, holdXid, vacuumLog } from '@eventplane/store-pg/testing'
import { EVENT_COLUMNS_DATA_TEXT } from '../../packages/store-pg/src/sql/event-columns.ts'
import type { benchDatabase } from './lib.ts'

type BenchDatabase = Awaited<ReturnType<typeof benchDatabase>>

/**
 * 10,000 events in `db`, then a transaction holding an xid in `other` (open until the returned `release()`), then
 * 100 more events above it; the log vacuumed.
 */
export async function loadAroundForeignXid(db: BenchDatabase, other: BenchDatabase): Promise<HeldXid> {
  await bulkLoadEvents(db.admin, 1, 10_000, 100)
  const held = await holdXid(other.admin)
  try {
    await bulkLoadEvents(db.admin, 10_001, 10_100, 100)
    await vacuumLog(db.admin)
    return held
  } catch (e) {
    await held.release()
    throw e
  }
}

/**
 * The relay's read (store-pg `readAllTextSql`'s statement, prepared, rows as arrays, limit 100) after checkpoint
 * `after` (tx id, position) with `horizon` (SQL; `$1` and `$2` are the checkpoint's) as the bound on `tx_id`.
 */
export function relayRead(sql: Sql, horizon: string, after: readonly [string, string]): Promise<unknown[][]> {
  return sql
    .unsafe(
      `select ${EVENT_COLUMNS_DATA_TEXT} from eventplane.events e
        where (e.tx_id, e.global_position) > ($1::xid8, $2::bigint) and e.tx_id < ${horizon}
        order by e.tx_id, e.global_position limit $3`,
      [after[0], after[1], 100],
      { prepare: true },
    )
    .values()
}
