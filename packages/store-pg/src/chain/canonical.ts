import { createHash } from 'node:crypto'
import { numericText } from '@eventplane/core'

// The canonical form of an event and one link of a stream's hash chain, as
// migration 0011 computes them in PostgreSQL (docs/architecture.md, "The hash
// chain"). Rebuilt here from the stored values so a verifier never trusts a
// function of the database it checks.

/** The previous hash of a stream's first event. */
export const GENESIS = Buffer.alloc(32)

/** The fields of an event the canonical form covers, as the store keeps them. */
export interface ChainFields {
  event_id: string
  tenant_id: string
  kind: string
  category: string
  stream_id: string
  stream_version: number
  type: string
  schema_version: number
  correlation_id: string
  causation_id: string | null
  caused_by: string
  /** `YYYY-MM-DDTHH:MI:SS.ffffffZ` (UTC, microseconds): see {@link canonicalInstant}. */
  occurred_at: string
}

function utf8Length(s: string): number {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) n += 1
    else if (c < 0x800) n += 2
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4
      i++
    } else n += 3
  }
  return n
}

/** jsonb's key order: shorter UTF-8 first, then bytewise (UTF-8 byte order is code point order). */
function jsonbKeyOrder(a: string, b: string): number {
  const byLength = utf8Length(a) - utf8Length(b)
  if (byLength !== 0) return byLength
  for (let i = 0, j = 0; i < a.length && j < b.length; ) {
    const x = a.codePointAt(i)!
    const y = b.codePointAt(j)!
    if (x !== y) return x - y
    i += x > 0xffff ? 2 : 1
    j += y > 0xffff ? 2 : 1
  }
  return 0
}

/**
 * A JSON value in PostgreSQL's jsonb text form: object keys in jsonb order,
 * `", "` and `": "` as separators, strings escaped as JSON.stringify does
 * (which is what jsonb prints for every string it can store), numbers as
 * {@link numericText}. Equal to `value::jsonb::text` for every value whose
 * numbers came from JavaScript (JSON.stringify), i.e. everything the store's
 * API wrote.
 */
export function jsonbText(value: unknown): string {
  if (value === null) return 'null'
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false'
    case 'number':
      return numericText(value)
    case 'string':
      return JSON.stringify(value)
    case 'object': {
      if (Array.isArray(value)) return `[${value.map(jsonbText).join(', ')}]`
      const record = value as Record<string, unknown>
      const keys = Object.keys(record).filter((k) => record[k] !== undefined)
      keys.sort(jsonbKeyOrder)
      return `{${keys.map((k) => `${JSON.stringify(k)}: ${jsonbText(record[k])}`).join(', ')}}`
    }
    default:
      throw new TypeError(`${typeof value} is not a JSON value`)
  }
}

/**
 * The canonical text of an event: the jsonb text of the object of its fields,
 * with `data` given as its jsonb text (as read with `data::text`, or
 * {@link jsonbText} of the parsed value); `version` in place of the event's own
 * (a verifier testing where an event belongs).
 */
export function canonicalText(fields: ChainFields, dataText: string, version = fields.stream_version): string {
  // The keys in jsonb order (fixed: shorter first, then bytewise). Names (kind,
  // type, category, stream_id, tenant_id) are written between quotes as they
  // are, as the trigger writes them: for a valid name that is its JSON text.
  return (
    `{"data": ${dataText}, "kind": "${fields.kind}", "type": "${fields.type}", ` +
    `"category": "${fields.category}", "event_id": "${fields.event_id}", ` +
    `"caused_by": ${JSON.stringify(fields.caused_by)}, "stream_id": "${fields.stream_id}", ` +
    `"tenant_id": "${fields.tenant_id}", "occurred_at": "${fields.occurred_at}", ` +
    `"causation_id": ${fields.causation_id === null ? 'null' : `"${fields.causation_id}"`}, ` +
    `"correlation_id": "${fields.correlation_id}", ` +
    `"schema_version": ${numericText(fields.schema_version)}, "stream_version": ${numericText(version)}}`
  )
}

/** One link: SHA-256(previous hash ‖ UTF-8 of the canonical text). */
export function chainLink(prev: Uint8Array | null, canonical: string): Buffer {
  return createHash('sha256')
    .update(prev ?? GENESIS)
    .update(canonical, 'utf8')
    .digest()
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|([+-])(\d{2}):(\d{2}))$/

/**
 * An ISO-8601 instant (as an envelope's `occurred_at`: up to microseconds,
 * any offset) in the canonical text: UTC, six fraction digits, `Z`.
 */
export function canonicalInstant(iso: string): string {
  const m = ISO.exec(iso)
  if (!m) throw new RangeError('not an ISO-8601 instant')
  const [, y, mo, d, h, mi, s, frac = '', , sign, oh, om] = m
  const offsetMin = sign === undefined ? 0 : (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om))
  const date = new Date(0)
  date.setUTCFullYear(Number(y), Number(mo) - 1, Number(d))
  date.setUTCHours(Number(h), Number(mi) - offsetMin, Number(s), 0)
  const pad = (n: number, w = 2) => String(n).padStart(w, '0')
  return (
    `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}` +
    `T${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}.${frac.padEnd(6, '0')}Z`
  )
}
