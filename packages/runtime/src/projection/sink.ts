import type { RecordedEvent } from '@eventplane/core'
import type { Sql, TransactionSql } from '@eventplane/store-pg'

/**
 * Where a projection's output goes. The engine stages events (in log order,
 * each after the last), seals them, then commits the sealed output in the
 * transaction that also moves the checkpoint, while the next events are
 * staged; `reset` forgets everything staged, sealed or cached when that
 * transaction fails or the checkpoint moved under us.
 */
export interface ProjectionSink {
  /** Applies `events` (already known to be after the checkpoint) to staged output. */
  stage(sql: Sql, events: readonly RecordedEvent[]): Promise<void>
  /** How much is staged (events or dirty states), to decide when to commit. */
  pending(): number
  /** Hands what is staged to the next `commit`; staging goes on into a fresh set meanwhile. */
  seal(): void
  /** Writes the sealed output in `tx`. */
  commit(tx: TransactionSql): Promise<void>
  /** Called once the commit transaction committed. */
  committed(): void
  /** Forgets staged output and caches. */
  reset(): void
}
