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
