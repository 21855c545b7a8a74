import { InvalidName } from './errors.ts'

/** What a name is used for; each kind has its own length bound and alphabet. */
export type NameKind = 'tenant' | 'category' | 'stream id' | 'type' | 'consumer' | 'projection' | 'controller'

export const NAME_LIMITS: Readonly<Record<NameKind, number>> = {
  tenant: 64,
  category: 64,
  'stream id': 128,
  type: 128,
  consumer: 64,
  projection: 64,
  controller: 64,
}

const TOKEN = /^[A-Za-z0-9_-]+$/
const STREAM_ID = /^[A-Za-z0-9_:-]+$/

let parses = 0

/**
 * How many names this process has validated so far. A name is parsed once
 * per process boundary (a {@link ValidStreamRef} or a validated envelope
 * carries it on); `@eventplane/core/testing` exposes this count so a test
 * can prove a path does not parse a name twice.
 */
export function nameParseCount(): number {
  return parses
}

/**
 * Validates a name used as a NATS subject token and a database key. Only ASCII
 * letters, digits, `_` and `-` (stream ids may also use `:`): NATS 2.9 delivers
 * literal `*`/`>` tokens and `.` splits tokens, so the server would not save us.
 */
export function validateName(kind: NameKind, value: unknown): string {
  parses += 1
  if (typeof value !== 'string') throw new InvalidName(`${kind} must be a string`, { kind })
  if (value.length === 0) throw new InvalidName(`${kind} must not be empty`, { kind })
  const limit = NAME_LIMITS[kind]
  if (value.length > limit)
    throw new InvalidName(`${kind} is ${value.length} characters, over the limit of ${limit}`, { kind })
  const pattern = kind === 'stream id' ? STREAM_ID : TOKEN
  if (!pattern.test(value)) {
    const allowed = kind === 'stream id' ? 'letters, digits, _, - and :' : 'letters, digits, _ and -'
    throw new InvalidName(`${kind} ${JSON.stringify(value)} may only contain ASCII ${allowed}`, { kind })
  }
  return value
}

export const validateTenant = (v: unknown): string => validateName('tenant', v)
export const validateCategory = (v: unknown): string => validateName('category', v)
export const validateStreamId = (v: unknown): string => validateName('stream id', v)
export const validateType = (v: unknown): string => validateName('type', v)
