import {
  type RecordedEvent,
  type ValidEnvelope,
  InvalidEnvelope,
  REDACTED_ACTOR,
  asSystemEnvelope,
  envelopeFromWire,
  isReservedCategory,
  isEventplaneError,
  toWire,
  validateTenant,
} from '@eventplane/core'
import type { PgEventStore } from './event-store.ts'
import { typedPgErrors } from './pg-errors.ts'
import { chainHashesSql } from './sql/chain-hashes.ts'

/** What `caused_by` becomes in an export unless the actor is asked for (core's wire redaction). */
export { REDACTED_ACTOR }

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
 * lines in log order: core's wire form (lineage intact, positions as decimal
 * strings), `caused_by` masked unless `includeActor`, and the event's stored
 * `hash` (hex) as a field of its own, so the file can be checked and imported
 * with its chain.
 */
export async function* exportEvents(store: PgEventStore, selector: ExportSelector): AsyncGenerator<string> {
  const tenant = validateTenant(selector.tenant)
  const options = selector.includeActor ? {} : { redact: { actor: 'mask' as const } }
  const line = (e: RecordedEvent, hash: Buffer | undefined) =>
    JSON.stringify({ ...toWire(e, options), hash: hash?.toString('hex') })
  // One lookup of the stored hashes per batch.
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

/**
 * One NDJSON line of an export as an envelope (core's wire form, validated
 * once); `n` numbers the line in errors. The chain's `hash` is dropped here:
 * checkImportChain checks it. Throws `core.invalid_envelope` for a line that
 * is not JSON, and the wire form's typed errors.
 */
export function parseExportLine(raw: string, n: number): ValidEnvelope {
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch {
    throw new InvalidEnvelope(`line ${n} is not JSON`)
  }
  // The chain's hash is checked by checkImportChain, not part of the envelope.
  if (typeof parsed === 'object' && parsed !== null && 'hash' in parsed) {
    const { hash: _h, ...rest } = parsed as Record<string, unknown>
    parsed = rest
  }
  const event = envelopeFromWire(parsed, { label: `line ${n}` })
  // A restore keeps the system's own streams (reserved categories) of the log it restores: an import is
  // the operator's, never a tenant's input.
  return isReservedCategory(event.stream.category) ? asSystemEnvelope(event) : event
}
