import type { Checkpoint, EventData, EventKind, RecordedEvent } from '@eventplane/core'
import type { Sql } from 'postgres'

/** A row as the stream reads it: timestamps already in `Date#toISOString` form (UTC, milliseconds, truncated). */
interface StreamedRow {
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

/**
 * Every event after `after` in the gap-safe global order, as one statement
 * read through a cursor of `batchRows` (one snapshot: everything older than
 * its oldest running transaction). Cross-tenant roles only. The timestamps
 * are formatted by PostgreSQL, saving two Date objects per row.
 */
export function streamLogSql(sql: Sql, after: Checkpoint, batchRows: number): AsyncIterable<StreamedRow[]> {
  return sql<StreamedRow[]>`
    select global_position, tx_id::text, event_id, tenant_id, kind, category, stream_id, stream_version, type,
           schema_version, data, correlation_id, causation_id, caused_by,
           to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as occurred_at,
           to_char(recorded_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as recorded_at
      from eventplane.events
     where (tx_id, global_position) > (${after.txId.toString()}::xid8, ${after.position.toString()}::bigint)
       and tx_id < pg_snapshot_xmin(pg_current_snapshot())
     order by tx_id, global_position`.cursor(batchRows)
}

/** The recorded event of a streamed row: the same value `toRecordedEvent` gives for the row read by `readAll`. */
export function streamedEvent(row: StreamedRow): RecordedEvent {
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
