import type postgres from 'postgres'
import type { Sql } from 'postgres'
import type { EventEnvelope } from '@eventplane/core'

export interface AppendedRow {
  event_id: string
  stream_version: string
  global_position: string
  tx_id: string
  recorded_at: Date
  replayed: boolean
}

/** -1 = any, 0 = no stream yet, n = the stream's current last version. */
export type ExpectedVersionCode = number

/**
 * One round trip: eventplane.append_to_stream sets the tenant for this
 * transaction, locks the stream, replays identical retries, checks the version
 * and inserts the batch (migrations/0001_events.sql).
 */
export async function appendSql(
  sql: Sql,
  tenant: string,
  category: string,
  streamId: string,
  expected: ExpectedVersionCode,
  events: readonly EventEnvelope[],
): Promise<AppendedRow[]> {
  const payload = sql.json(
    events.map((e) => ({
      event_id: e.event_id,
      kind: e.kind,
      type: e.type,
      schema_version: e.schema_version,
      data: e.data,
      correlation_id: e.correlation_id,
      causation_id: e.causation_id,
      caused_by: e.caused_by,
      occurred_at: e.occurred_at,
    })) as unknown as postgres.JSONValue,
  )
  return sql<AppendedRow[]>`
    select event_id, stream_version::text, global_position::text, tx_id::text, recorded_at, replayed
      from eventplane.append_to_stream(${tenant}, ${category}, ${streamId}, ${expected}, ${payload})`
}
