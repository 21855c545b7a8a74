import type { EventData, EventKind, RecordedEvent } from '@eventplane/core'

/**
 * A row of eventplane.events as the readers select it (sql/event-columns.ts),
 * as an array (postgres.js `.values()`): int8 and xid8 as decimal text, the
 * instants as `to_json` text of the UTC timestamp. Why an array: postgres.js
 * builds an object row by adding each column by name, and an object given
 * more than a dozen properties that way is a dictionary in V8, slow to build,
 * read and collect (measured: ~1.2 µs a 16-column row against ~0.3 µs as an
 * array, docs/benchmarks/journal-2026-11-30-am.md, "the read path profiled").
 */
export type EventValues = [
  global_position: string,
  tx_id: string,
  event_id: string,
  tenant_id: string,
  kind: string,
  category: string,
  stream_id: string,
  stream_version: string,
  type: string,
  schema_version: number,
  data: EventData,
  correlation_id: string,
  causation_id: string | null,
  caused_by: string,
  occurred_at: string,
  recorded_at: string,
]

/** An event row with its columns by name, instants as RecordedEvent carries them (`data` of type D). */
export interface EventRow<D = EventData> {
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
  data: D
  correlation_id: string
  causation_id: string | null
  caused_by: string
  occurred_at: string
  recorded_at: string
}

export function toRecordedEvent(r: EventValues): RecordedEvent {
  return {
    event_id: r[2],
    tenant_id: r[3],
    kind: r[4] as EventKind,
    stream: { category: r[5], id: r[6] },
    type: r[8],
    schema_version: r[9],
    data: r[10],
    correlation_id: r[11],
    causation_id: r[12],
    caused_by: r[13],
    occurred_at: utcInstant(r[14], true),
    stream_version: Number(r[7]),
    global_position: decimalBigInt(r[0]),
    tx_id: decimalBigInt(r[1]),
    recorded_at: utcInstant(r[15], false),
  }
}

/** A row read with `data` as its JSON text (readAllText) as an object, instants as RecordedEvent's. */
export function toEventTextRow(r: EventValues): EventRow<string> {
  return {
    global_position: r[0],
    tx_id: r[1],
    event_id: r[2],
    tenant_id: r[3],
    kind: r[4],
    category: r[5],
    stream_id: r[6],
    stream_version: r[7],
    type: r[8],
    schema_version: r[9],
    data: r[10] as unknown as string,
    correlation_id: r[11],
    causation_id: r[12],
    caused_by: r[13],
    occurred_at: utcInstant(r[14], true),
    recorded_at: utcInstant(r[15], false),
  }
}

/**
 * A decimal string as a bigint: through a double when it has at most 15
 * digits (exact below 2^53, and ~3× faster than parsing the string as a
 * bigint), else parsed whole.
 */
export function decimalBigInt(text: string): bigint {
  return text.length <= 15 ? BigInt(Number(text)) : BigInt(text)
}

const ZEROS = '00000'

/**
 * `to_json` of a UTC timestamp (`"YYYY-MM-DDTHH:MI:SS[.f]"`, quotes
 * included, 0–6 fraction digits with trailing zeros dropped) as an ISO
 * instant in UTC: `…SS.mmmZ`, or with `micro` and microseconds in it
 * `…SS.uuuuuuZ` (what `to_char` with `MS` / `US` gave before: milliseconds
 * truncated, not rounded).
 */
export function utcInstant(json: string, micro: boolean): string {
  const end = json.length - 1
  const dot = json.indexOf('.', 11)
  if (dot < 0) return `${json.slice(1, end)}.000Z`
  const digits = end - dot - 1
  if (digits === 3 || (micro && digits === 6)) return `${json.slice(1, end)}Z`
  if (digits > 3 && !micro) return `${json.slice(1, dot + 4)}Z`
  return `${json.slice(1, end)}${ZEROS.slice(0, (digits < 3 ? 3 : 6) - digits)}Z`
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
 * ~130 MB (docs/benchmarks/journal-2026-11-30-early.md, "Rebuild memory").
 */
export function mapAndRelease<R, T>(rows: R[], map: (row: R) => T): T[] {
  const mapped = rows.map(map)
  rows.length = 0
  return mapped
}
