import type { EventData, EventKind, RecordedEvent } from '@eventplane/core'

/** A row of eventplane.events as the readers select it (sql/event-columns.ts): int8 and xid8 as strings, instants as ISO strings. */
export interface EventRow {
  global_position: string
  tx_id: string
  event_id: string
  tenant_id: string
  kind: string
  category: string
  stream_id: string
  stream_version: string
  type: string
  schema_version: number
  data: EventData
  correlation_id: string
  causation_id: string | null
  caused_by: string
  occurred_at: string
  recorded_at: string
}

export function toRecordedEvent(row: EventRow): RecordedEvent {
  return {
    event_id: row.event_id,
    tenant_id: row.tenant_id,
    kind: row.kind as EventKind,
    stream: { category: row.category, id: row.stream_id },
    type: row.type,
    schema_version: row.schema_version,
    data: row.data,
    correlation_id: row.correlation_id,
    causation_id: row.causation_id,
    caused_by: row.caused_by,
    occurred_at: row.occurred_at,
    stream_version: Number(row.stream_version),
    global_position: BigInt(row.global_position),
    tx_id: BigInt(row.tx_id),
    recorded_at: row.recorded_at,
  }
}

/**
 * `rows.map(map)`, then empties `rows` (the driver's result array, ours once
 * handed over). Why: postgres.js's result array is often in V8's old
 * generation by the time its rows are read (it lives while they stream in),
 * and a dead old-generation array keeps everything it points to alive through
 * every young-generation GC until the next full GC. Its rows were copied to the
 * old generation, then the old generation grew to several times its live size
 * before a full GC: a 1M-event rebuild promoted ~570 MB of rows (~570 bytes an
 * event); with the array emptied, 35 MB, and its peak RSS fell from 156 to
 * ~130 MB (docs/benchmarks.md, 2026-11-30).
 */
export function mapAndRelease<R, T>(rows: R[], map: (row: R) => T): T[] {
  const mapped = rows.map(map)
  rows.length = 0
  return mapped
}
