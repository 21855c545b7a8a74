/**
 * `occurred_at` as an ISO string in UTC: milliseconds, or microseconds when
 * it has any. The hash chain covers it to the microsecond (PostgreSQL keeps
 * what a client sent), so an export must too, or the re-imported event would
 * hash differently; an instant the factory made (milliseconds) reads back as
 * it was written.
 */
const OCCURRED_AT = `to_char(e.occurred_at at time zone 'UTC',
    case when extract(microseconds from e.occurred_at at time zone 'UTC')::bigint % 1000 = 0
      then 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"' else 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' end) as occurred_at`

/**
 * The columns of an event row as the readers select them (alias `e`): int8
 * and xid8 as decimal text, instants formatted by PostgreSQL as the ISO
 * strings RecordedEvent carries (UTC; `recorded_at` in milliseconds,
 * `occurred_at` as above), so the client parses no dates. Nested into queries
 * with `sql.unsafe` (constant text, no input).
 */
export const EVENT_COLUMNS = `e.global_position::text as global_position, e.tx_id::text as tx_id, e.event_id,
  e.tenant_id, e.kind, e.category, e.stream_id, e.stream_version::text as stream_version, e.type,
  e.schema_version, e.data, e.correlation_id, e.causation_id, e.caused_by,
  ${OCCURRED_AT},
  to_char(e.recorded_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as recorded_at`

/** The same with `data` as its JSON text, for a reader that forwards it without parsing (the relay). */
export const EVENT_COLUMNS_DATA_TEXT = EVENT_COLUMNS.replace('e.data,', 'e.data::text as data,')
