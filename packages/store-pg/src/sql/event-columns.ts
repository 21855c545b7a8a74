import type { PendingQuery, Row } from 'postgres'
import type { EventValues } from '../rows.ts'

/**
 * The columns of an event row as the readers select them (alias `e`), in the
 * order of `EventValues` (rows.ts): readers fetch rows as arrays
 * (postgres.js `.values()`) and map them by position. int8 and xid8 come as
 * decimal text; the two instants as `to_json` of the UTC timestamp
 * (`"2026-11-30T07:54:22.2777"`: ISO 8601 whatever the session's DateStyle,
 * trailing zeros of the fraction dropped), which rows.ts turns into the ISO
 * strings RecordedEvent carries: `occurred_at` in milliseconds, or
 * microseconds when it has any (the hash chain covers it to the microsecond,
 * so an export must keep them), `recorded_at` in milliseconds. `to_json` costs
 * the server ~0.5 µs an event less than the `to_char` formatting these
 * replaced (docs/benchmarks/journal-2026-11-30-am.md, "the read path profiled"). Nested into queries with
 * `sql.unsafe` (constant text, no input).
 */
export const EVENT_COLUMNS = `e.global_position::text, e.tx_id::text, e.event_id, e.tenant_id, e.kind, e.category,
  e.stream_id, e.stream_version::text, e.type, e.schema_version, e.data, e.correlation_id, e.causation_id,
  e.caused_by, to_json(e.occurred_at at time zone 'UTC')::text, to_json(e.recorded_at at time zone 'UTC')::text`

/** The same with `data` as its JSON text, for a reader that forwards it without parsing (the relay). */
export const EVENT_COLUMNS_DATA_TEXT = EVENT_COLUMNS.replace('e.data,', 'e.data::text,')

/** The rows of a query selecting `EVENT_COLUMNS` (or `EVENT_COLUMNS_DATA_TEXT`) as arrays in that order. */
export function eventValues(query: PendingQuery<Row[]>): Promise<EventValues[]> {
  return query.values() as unknown as Promise<EventValues[]>
}

/** The same through a cursor of `batchRows`. */
export function eventValuesCursor(query: PendingQuery<Row[]>, batchRows: number): AsyncIterable<EventValues[]> {
  return query.values().cursor(batchRows) as unknown as AsyncIterable<EventValues[]>
}
