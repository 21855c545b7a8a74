import {
  type EventEnvelope,
  type RecordedEvent,
  InvalidEnvelope,
  isEventplaneError,
  validateEnvelope,
  validateTenant,
} from '@eventplane/core'
import type { PgEventStore } from './event-store.ts'
import { typedPgErrors } from './pg-errors.ts'
import { chainHashesSql } from './sql/chain-hashes.ts'

/** What `caused_by` becomes in an export unless the actor is asked for. */
export const REDACTED_ACTOR = 'redacted'

export interface ExportSelector {
  tenant: string
  /** One stream of the tenant. */
  stream?: { category: string; id: string }
  /** One correlation chain of the tenant. */
  correlationId?: string
  /** Keep `caused_by` (a backup meant for restore); default redacts it. */
  includeActor?: boolean
}

/**
 * Events of one tenant (or one of its streams or correlation chains) as NDJSON
 * lines in log order, lineage intact, positions as decimal strings, each with
 * its stored `hash` (hex) so the file can be checked and imported with its chain.
 */
export async function* exportEvents(store: PgEventStore, selector: ExportSelector): AsyncGenerator<string> {
  const tenant = validateTenant(selector.tenant)
  const line = (e: RecordedEvent, hash: Buffer | undefined) =>
    JSON.stringify({
      ...e,
      caused_by: selector.includeActor ? e.caused_by : REDACTED_ACTOR,
      global_position: e.global_position.toString(),
      tx_id: e.tx_id.toString(),
      hash: hash?.toString('hex'),
    })
  // Each event's stored hash rides along as a field of its own line (one lookup per batch).
  async function* withHashes(batch: readonly RecordedEvent[]): AsyncGenerator<string> {
    const hashes = await typedPgErrors(() =>
      chainHashesSql(
        store.sql,
        tenant,
        batch.map((e) => e.event_id),
      ),
    )
    for (const e of batch) yield line(e, hashes.get(e.event_id))
  }
  if (selector.correlationId !== undefined) {
    yield* withHashes(await store.readCorrelation(tenant, selector.correlationId))
    return
  }
  const batches = selector.stream
    ? store.readStream({ tenant, ...selector.stream })
    : store.readAll({ tenant, batchSize: 1000 })
  for await (const batch of batches) yield* withHashes(batch)
}

export interface ImportResult {
  imported: number
  skipped: number
  conflicts: { eventId: string; line: number }[]
}

/**
 * Re-ingests an export, in its order: an event id already stored identically is
 * skipped, one stored with other content is refused (reported, not written).
 * Needs a store whose role may insert every kind (the operator role).
 */
export async function importEvents(
  store: PgEventStore,
  lines: AsyncIterable<string> | Iterable<string>,
): Promise<ImportResult> {
  const result: ImportResult = { imported: 0, skipped: 0, conflicts: [] }
  let n = 0
  for await (const raw of lines) {
    n++
    if (raw.trim() === '') continue
    const event = parseExportLine(raw, n)
    try {
      const r = await store.append({ tenant: event.tenant_id, ...event.stream }, [event], { expectedVersion: 'any' })
      if (r.replayed) result.skipped++
      else result.imported++
    } catch (e) {
      if (!isEventplaneError(e, 'store.idempotency_conflict')) throw e
      result.conflicts.push({ eventId: event.event_id, line: n })
    }
  }
  return result
}

function parseExportLine(raw: string, n: number): EventEnvelope {
  let parsed: Record<string, unknown>
  try {
    parsed = JSON.parse(raw) as Record<string, unknown>
  } catch {
    throw new InvalidEnvelope(`line ${n} is not JSON`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new InvalidEnvelope(`line ${n} is not an event object`)
  const { stream_version: _v, global_position: _p, tx_id: _t, recorded_at: _r, hash: _h, ...envelope } = parsed
  try {
    return validateEnvelope(envelope)
  } catch (e) {
    throw new InvalidEnvelope(`line ${n}: ${(e as Error).message}`)
  }
}
