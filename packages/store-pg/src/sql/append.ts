import type postgres from 'postgres'
import type { Sql } from 'postgres'
import type { EventEnvelope } from '@eventplane/core'

/** The one row an append function returns (migrations/0010, 0013): its events in batch order. */
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

/** The append function (migrations/0013) of each entry. */
const APPEND_FUNCTION: Record<AppendEntry, string> = {
  intents: 'append_intents',
  facts: 'append_facts',
  any: 'append_to_stream',
}

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
 * One round trip: the append function (migrations/0013, SECURITY DEFINER)
 * sets the tenant for this transaction, checks the version, inserts the batch
 * after the stream's last version and chains each event's hash from the
 * stream's last one; the server assigns tx_id, global_position, recorded_at,
 * stream_version and hash and returns them in one row (recorded_at formatted
 * as an ISO instant). The batch goes as one typed array per envelope field
 * and `data` as one JSON array: no per-event document to take apart. A
 * concurrent append that took those versions first makes it fail with EPWEV
 * (exact expectation) or 23505 (append again). `probeIds`: look for stored
 * event ids first (an identical retry or a conflict), which the caller asks
 * for after an insert failed on one.
 */
export async function appendSql(
  sql: Sql,
  tenant: string,
  category: string,
  streamId: string,
  expected: ExpectedVersionCode,
  events: readonly EventEnvelope[],
  probeIds: boolean,
): Promise<AppendedRow> {
  const n = events.length
  const ids = new Array<string>(n)
  const kinds = new Array<string>(n)
  const types = new Array<string>(n)
  const schemaVersions = new Array<number>(n)
  const data = new Array<unknown>(n)
  const correlations = new Array<string>(n)
  const causations = new Array<string | null>(n)
  const causedBy = new Array<string>(n)
  const occurredAt = new Array<string>(n)
  for (let i = 0; i < n; i++) {
    const e = events[i]!
    ids[i] = e.event_id
    kinds[i] = e.kind
    types[i] = e.type
    schemaVersions[i] = e.schema_version
    data[i] = e.data
    correlations[i] = e.correlation_id
    causations[i] = e.causation_id
    causedBy[i] = e.caused_by
    occurredAt[i] = e.occurred_at
  }
  // occurred_at goes as text[] cast in SQL: a timestamptz[] parameter would make postgres.js pass each
  // string through a JavaScript Date, dropping microseconds the envelope carries (and the hash covers).
  const payload = sql.json(data as postgres.JSONValue)
  return one(sql<AppendedRow[]>`
    select stream_versions::text[], global_positions::text[], tx_id::text, to_char(recorded_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as recorded_at, replayed
      from eventplane.${sql(APPEND_FUNCTION[appendEntryFor(events)])}(${tenant}, ${category}, ${streamId}, ${expected}, ${ids}::uuid[],
        ${kinds}::text[], ${types}::text[], ${schemaVersions}::smallint[], ${payload}, ${correlations}::uuid[],
        ${causations}::uuid[], ${causedBy}::text[], ${occurredAt}::text[]::timestamptz[], ${probeIds})`)
}

async function one(rows: Promise<AppendedRow[]>): Promise<AppendedRow> {
  return (await rows)[0]!
}
