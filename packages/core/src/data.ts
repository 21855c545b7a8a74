import { InvalidData, PayloadTooLarge } from './errors.ts'

/**
 * Default bound on an event's data as the log stores it (see {@link storedDataBytes}), well below the log
 * stream's 256 KiB `max_msg_size` with the envelope around it.
 */
export const DEFAULT_MAX_DATA_BYTES = 64 * 1024
const MAX_DEPTH = 64

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }
export type EventData = { [key: string]: JsonValue }

/**
 * Checks that `data` is a plain JSON object jsonb stores verbatim: no `\u0000`
 * (jsonb rejects it), no lone surrogates, no NaN/Infinity, no undefined, class
 * instances or cycles; and that its form as the log stores it ({@link storedDataBytes}) fits `maxBytes`.
 * Returns the size; with `maxBytes` Infinity (data parsed from a body its transport already bounded, such
 * as a log message) the size is not measured and -1 is returned.
 */
export function validateData(data: unknown, maxBytes: number = DEFAULT_MAX_DATA_BYTES): number {
  if (!isPlainObject(data)) throw new InvalidData('event data must be a JSON object')
  checkValue(data, '$', 0)
  if (maxBytes === Number.POSITIVE_INFINITY) return -1
  const size = storedDataBytes(data as EventData)
  if (size > maxBytes) throw new PayloadTooLarge(size, maxBytes)
  return size
}

/**
 * The UTF-8 bytes of `data` as PostgreSQL's jsonb renders it, which is what the log stores, the relay
 * publishes and every reader gets: `", "` and `": "` between items, and each number as its full decimal.
 * The JSON a client sends is no measure of that: `1e308` (5 bytes) is stored as 309 digits, `5e-324` as 326
 * characters, so 60 KB of such numbers would be 3 MB in the log, more than any log message may carry, and
 * the relay, which publishes in order, would stop at it for every tenant. Data that passed validateData.
 */
export function storedDataBytes(data: EventData): number {
  return valueBytes(data)
}

function valueBytes(v: JsonValue): number {
  if (v === null) return 4
  if (typeof v === 'boolean') return v ? 4 : 5
  if (typeof v === 'number') return numericText(v).length
  if (typeof v === 'string') return stringBytes(v)
  // Around each item but the first: ", " (2 bytes); an object's entries are `"key": value`.
  if (Array.isArray(v)) {
    let size = v.length === 0 ? 2 : v.length * 2
    for (const item of v) size += valueBytes(item)
    return size
  }
  const keys = Object.keys(v)
  let size = keys.length === 0 ? 2 : keys.length * 4
  for (const key of keys) size += stringBytes(key) + valueBytes(v[key]!)
  return size
}

/**
 * A JavaScript number as PostgreSQL's numeric prints it after parsing the
 * number's JSON text: plain decimal, never an exponent (1e21 →
 * 1000000000000000000000, 1.5e-7 → 0.00000015), -0 → 0. The stored form's numbers: what the data limit
 * counts and what the hash chain's canonical text holds (store-pg `jsonbText`).
 */
export function numericText(n: number): string {
  if (!Number.isFinite(n)) throw new RangeError('a JSON number must be finite')
  if (Object.is(n, -0) || n === 0) return '0'
  const s = String(n)
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s)
  if (!m) return s
  const [, sign, first, rest = '', exp] = m
  const digits = first! + rest
  const point = 1 + Number(exp)
  if (point >= digits.length) return sign + digits + '0'.repeat(point - digits.length)
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`
}

/** PostgreSQL escapes what JSON.stringify escapes (`"`, `\`, \b \f \n \r \t, other controls as \u00XX). */
function stringBytes(s: string): number {
  let size = 2
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20) size += c === 8 || c === 9 || c === 10 || c === 12 || c === 13 ? 2 : 6
    else if (c === 0x22 || c === 0x5c) size += 2
    else if (c < 0x80) size += 1
    else if (c < 0x800) size += 2
    else if (c >= 0xd800 && c <= 0xdbff) {
      size += 4
      i++
    } else size += 3
  }
  return size
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

function checkString(s: string, path: string): void {
  if (s.includes('\u0000')) throw new InvalidData(`event data at ${path} contains a NUL character (\\u0000)`)
  if (!s.isWellFormed()) throw new InvalidData(`event data at ${path} contains a lone surrogate`)
}

function checkValue(v: unknown, path: string, depth: number): void {
  if (depth > MAX_DEPTH) throw new InvalidData(`event data is nested deeper than ${MAX_DEPTH} levels`)
  if (v === null || typeof v === 'boolean') return
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new InvalidData(`event data at ${path} is not a finite number`)
    return
  }
  if (typeof v === 'string') {
    checkString(v, path)
    return
  }
  if (Array.isArray(v)) {
    for (const [i, item] of v.entries()) checkValue(item, `${path}[${i}]`, depth + 1)
    return
  }
  if (isPlainObject(v)) {
    for (const [k, item] of Object.entries(v)) {
      checkString(k, `${path} (key)`)
      checkValue(item, `${path}.${k}`, depth + 1)
    }
    return
  }
  throw new InvalidData(`event data at ${path} is a ${typeof v}, not JSON`)
}
