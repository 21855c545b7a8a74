import { InvalidData, PayloadTooLarge } from './errors.ts'

/** Default bound on an event's serialized data, below NATS's 1 MiB max_payload. */
export const DEFAULT_MAX_DATA_BYTES = 64 * 1024
const MAX_DEPTH = 64
const utf8 = new TextEncoder()

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }
export type EventData = { [key: string]: JsonValue }

/**
 * Checks that `data` is a plain JSON object jsonb stores verbatim: no `\u0000`
 * (jsonb rejects it), no lone surrogates, no NaN/Infinity, no undefined, class
 * instances or cycles; and that its JSON form fits `maxBytes`. Returns the size; with `maxBytes` Infinity
 * (data parsed from a body its transport already bounded, such as a log message) the size is not
 * measured (no re-serialization) and -1 is returned.
 */
export function validateData(data: unknown, maxBytes: number = DEFAULT_MAX_DATA_BYTES): number {
  if (!isPlainObject(data)) throw new InvalidData('event data must be a JSON object')
  checkValue(data, '$', 0)
  if (maxBytes === Number.POSITIVE_INFINITY) return -1
  const size = utf8.encode(JSON.stringify(data)).byteLength
  if (size > maxBytes) throw new PayloadTooLarge(size, maxBytes)
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
