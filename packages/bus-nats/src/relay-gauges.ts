import type { Checkpoint, RecordedEvent } from '@eventplane/core'
import {
  type PgEventStore,
  type Sql,
  countEventsAfter,
  loadRelayCheckpoint,
  transactionsHoldingLog,
} from '@eventplane/store-pg'
import type { EventplaneMetrics } from './ops/metrics.ts'

/** What one relay's scrape-time gauges are read from. */
export interface RelayGaugeSource {
  name: string
  sql: Sql
  store: PgEventStore
  active: boolean
  /** The active relay's own checkpoint (undefined on a standby, whose own is stale). */
  checkpoint: Checkpoint | undefined
}

/**
 * Sets a relay's scrape-time gauges: active or not, the checkpoint, the lag
 * in events and in seconds (the oldest unpublished event's age), and the age
 * of the oldest transaction holding the gap-safe read back.
 */
export async function collectRelayGauges(metrics: EventplaneMetrics, r: RelayGaugeSource): Promise<void> {
  const m = metrics.relay
  const labels = { relay: r.name }
  m.active.set(labels, r.active ? 1 : 0)
  // A standby's own checkpoint is stale: the active relay (maybe in another process) moves the stored one.
  const checkpoint = (r.active ? r.checkpoint : undefined) ?? (await loadRelayCheckpoint(r.sql, r.name))
  m.checkpoint.set(labels, Number(checkpoint.position))
  m.lagEvents.set(labels, await countEventsAfter(r.sql, checkpoint))
  let oldestUnpublished: RecordedEvent | undefined
  for await (const batch of r.store.readAll({ from: checkpoint, batchSize: 1 })) {
    oldestUnpublished = batch[0]
    break
  }
  const lagMs = oldestUnpublished ? Date.now() - Date.parse(oldestUnpublished.recorded_at) : 0
  m.lagSeconds.set(labels, Math.max(0, lagMs) / 1000)
  // Only what holds this log back (the horizon's rule): another database's transactions are not counted.
  const [oldest] = await transactionsHoldingLog(r.sql)
  m.oldestTransaction.set(labels, (oldest?.ageMs ?? 0) / 1000)
}
