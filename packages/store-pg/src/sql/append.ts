import type postgres from 'postgres'
import type { Sql } from 'postgres'
import type { EventEnvelope } from '@eventplane/core'

/** The one row an append function returns (migrations/0010): its events in batch order. */
export interface AppendedRow {
  /** int8[] as decimal strings. */
  stream_versions: string[]
  global_positions: string[]
  tx_id: string
  /** ISO 8601 in UTC with milliseconds, formatted by PostgreSQL. */
  recorded_at: string
  replayed: boolean
}

/** -1 = any, 0 = no stream yet, n = the stream's current last version. */
export type ExpectedVersionCode = number

/**
 * Which append function a batch goes through: application roles may not
 * INSERT, and each role may execute only the functions of the kinds it may
 * append (intent_writer: intents; fact_writer: facts and internal events;
 * operator: any, e.g. an import or a mixed batch).
 */
export type AppendEntry = 'intents' | 'facts' | 'any'

/** The entry point for the kinds of `events`. */
export function appendEntryFor(events: readonly EventEnvelope[]): AppendEntry {
  let intents = false
  let others = false
  for (const e of events) {
    if (e.kind === 'intent') intents = true
    else others = true
  }
  if (intents && others) return 'any'
  return intents ? 'intents' : 'facts'
}

/**
 * One round trip: the append function (migrations/0010, SECURITY DEFINER)
 * sets the tenant for this transaction, replays identical retries, checks the
 * version and inserts the batch after the stream's last version; the server
 * assigns tx_id, global_position, recorded_at and stream_version and returns
 * them in one row (recorded_at formatted as an ISO instant). A
 * concurrent append that took those versions first makes it fail with EPWEV
 * (exact expectation) or EPRTY (`any`: append again).
 */
export async function appendSql(
  sql: Sql,
  tenant: string,
  category: string,
  streamId: string,
  expected: ExpectedVersionCode,
  events: readonly EventEnvelope[],
): Promise<AppendedRow> {
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
  switch (appendEntryFor(events)) {
    case 'intents':
      return one(sql<AppendedRow[]>`
        select stream_versions::text[], global_positions::text[], tx_id::text, to_char(recorded_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as recorded_at, replayed
          from eventplane.append_intents(${tenant}, ${category}, ${streamId}, ${expected}, ${payload})`)
    case 'facts':
      return one(sql<AppendedRow[]>`
        select stream_versions::text[], global_positions::text[], tx_id::text, to_char(recorded_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as recorded_at, replayed
          from eventplane.append_facts(${tenant}, ${category}, ${streamId}, ${expected}, ${payload})`)
    case 'any':
      return one(sql<AppendedRow[]>`
        select stream_versions::text[], global_positions::text[], tx_id::text, to_char(recorded_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as recorded_at, replayed
          from eventplane.append_to_stream(${tenant}, ${category}, ${streamId}, ${expected}, ${payload})`)
  }
}

async function one(rows: Promise<AppendedRow[]>): Promise<AppendedRow> {
  return (await rows)[0]!
}
