/**
 * An independent model of what the gateway must answer to one submit request,
 * written from the contract (DESIGN §2 and §4, the gateway's documented check
 * order) rather than from its code: size, subject names, body, envelope
 * (shape, names, time, lineage, data), kind, tenant, stream, then the store's
 * version and idempotency rules. The first failing stage decides the error;
 * within the envelope stage any of the defects present may be the one named.
 */
import { type ErrorCode, type EventData, storedDataBytes } from '@eventplane/core'
import { ENVELOPE_KEYS } from './submit-arbitraries.ts'

/** Every code of `ErrorCode`, at run time; the type check below breaks when the union grows. */
export const ERROR_CODES = [
  'core.invalid_name',
  'core.invalid_envelope',
  'core.invalid_data',
  'core.payload_too_large',
  'core.schema_violation',
  'core.unknown_schema',
  'core.tenant_mismatch',
  'core.stream_mismatch',
  'store.wrong_expected_version',
  'store.idempotency_conflict',
  'store.forbidden',
  'store.auth_failed',
  'store.unavailable',
  'store.migration_failed',
  'store.chain_broken',
  'store.chain_unverifiable',
  'bus.unavailable',
  'bus.config',
  'bus.forbidden',
  'bus.auth_failed',
  'bus.bad_request',
  'bus.timeout',
  'bus.rate_limited',
  'bus.stream_mismatch',
  'bus.untrusted_message',
  'bus.unknown_tenant',
  'bus.unknown_user',
  'bus.jwt_not_applied',
  'bus.internal',
  'runtime.unknown_projection',
  'runtime.unknown_controller',
  'runtime.handler_failed',
  'runtime.projection_not_shadowable',
  'runtime.checkpoint_moved',
  'runtime.finalizers_pending',
  'runtime.reconcile_failed',
  'runtime.invalid_domain',
] as const satisfies readonly ErrorCode[]
type Unlisted = Exclude<ErrorCode, (typeof ERROR_CODES)[number]>
export const ERROR_CODES_ARE_COMPLETE: [Unlisted] extends [never] ? true : Unlisted = true

export const MAX_REQUEST_BYTES = 80 * 1024
export const MAX_DATA_BYTES = 64 * 1024
const MAX_DEPTH = 64
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const TOKEN = /^[A-Za-z0-9_-]+$/
const STREAM_ID = /^[A-Za-z0-9_:-]+$/
const ISO_INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/
const PRINCIPAL = /^[\x21-\x7e]{1,120}$/

/** One request as it leaves the client: the subject, the body bytes, the `Eventplane-Principal` header after nats.js trims it. */
export interface SubmitRequestModel {
  subject: string
  body: Uint8Array
  principal: string | undefined
}

export interface StoreTarget {
  tenant: string
  category: string
  id: string
}

/** A request that passed every check before the store: what the store is asked to append. */
export interface ReadyForStore {
  target: StoreTarget
  event: Record<string, unknown> & { event_id: string; data: Record<string, unknown> }
  causedBy: string
  expectedVersion: number | 'no_stream' | 'any'
}

export type PreStore = { refused: Set<ErrorCode>; why: string } | { ready: ReadyForStore }

/** What PostgreSQL holds before the request: the stream's last version and the row with this event id, if any. */
export interface StoreFacts {
  currentVersion: number
  existing: (StoreTarget & { sameContent: boolean }) | undefined
  /** The causation id names an event of the target's tenant in the event's correlation chain (false for a root). */
  parentInChain: boolean
}

export type Expectation = { ok: 'new' | 'replay' } | { refused: Set<ErrorCode>; why: string }

const refuse = (why: string, ...codes: ErrorCode[]): PreStore => ({ refused: new Set(codes), why })

function nameDefect(value: unknown, limit: number, pattern: RegExp): ErrorCode | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > limit) return 'core.invalid_envelope'
  return pattern.test(value) ? undefined : 'core.invalid_name'
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * A real instant: every field in range for its month, a UTC offset a time
 * zone can have (PostgreSQL refuses 2024-02-30, year 0 and +16:00, which
 * `Date.parse` takes). 24:00:00 is the end of a day for both, so it passes.
 */
export function isCalendarInstant(s: string): boolean {
  const m = ISO_INSTANT.exec(s)
  if (m === null || Number.isNaN(Date.parse(s))) return false
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ]
  const zone = m[8]!
  const offsetMinutes = zone === 'Z' ? 0 : Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate()
  const endOfDay = hour === 24 && minute === 0 && second === 0 && !/[1-9]/.test(m[7] ?? '')
  return (
    year >= 1 &&
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= daysInMonth &&
    (hour <= 23 || endOfDay) &&
    minute <= 59 &&
    second <= 59 &&
    offsetMinutes < 16 * 60 &&
    Number(zone.slice(4, 6) || 0) <= 59
  )
}

/** Defects of event data: not an object, NUL or lone surrogates, non-finite numbers, too deep, too big. */
function dataDefects(data: unknown): ErrorCode[] {
  if (!isObject(data)) return ['core.invalid_envelope']
  const found = new Set<ErrorCode>()
  const badString = (s: string): boolean => s.includes('\u0000') || !s.isWellFormed()
  const visit = (v: unknown, depth: number): void => {
    if (depth > MAX_DEPTH) found.add('core.invalid_data')
    else if (typeof v === 'string') badString(v) && found.add('core.invalid_data')
    else if (typeof v === 'number') Number.isFinite(v) || found.add('core.invalid_data')
    else if (Array.isArray(v)) {
      for (const x of v) visit(x, depth + 1)
    } else if (isObject(v)) {
      for (const [k, x] of Object.entries(v)) {
        if (badString(k)) found.add('core.invalid_data')
        visit(x, depth + 1)
      }
    }
  }
  visit(data, 0)
  // The limit counts the data as the log stores it (jsonb's rendering; stored-size.test.ts holds the two equal).
  if (isObject(data) && storedDataBytes(data as EventData) > MAX_DATA_BYTES) found.add('core.payload_too_large')
  return [...found]
}

function envelopeDefects(event: Record<string, unknown>): ErrorCode[] {
  const found = new Set<ErrorCode>()
  const keys = Object.keys(event)
  if (
    keys.some((k) => !(ENVELOPE_KEYS as readonly string[]).includes(k)) ||
    ENVELOPE_KEYS.some((k) => !keys.includes(k))
  )
    found.add('core.invalid_envelope')
  const { event_id, tenant_id, kind, stream, type, schema_version, data, correlation_id, causation_id, occurred_at } =
    event
  if (typeof event_id !== 'string' || !UUID.test(event_id)) found.add('core.invalid_envelope')
  if (typeof correlation_id !== 'string' || !UUID.test(correlation_id)) found.add('core.invalid_envelope')
  if (causation_id !== null && (typeof causation_id !== 'string' || !UUID.test(causation_id)))
    found.add('core.invalid_envelope')
  if (causation_id === null && correlation_id !== event_id) found.add('core.invalid_envelope')
  if (causation_id === event_id) found.add('core.invalid_envelope')
  if (!['intent', 'fact', 'internal'].includes(kind as string)) found.add('core.invalid_envelope')
  if (
    !(
      typeof schema_version === 'number' &&
      Number.isInteger(schema_version) &&
      schema_version >= 1 &&
      schema_version <= 32767
    )
  )
    found.add('core.invalid_envelope')
  if (
    typeof occurred_at !== 'string' ||
    occurred_at.length < 20 ||
    occurred_at.length > 40 ||
    !isCalendarInstant(occurred_at)
  )
    found.add('core.invalid_envelope')
  const streamKeys = isObject(stream) ? Object.keys(stream) : []
  if (!isObject(stream) || streamKeys.some((k) => k !== 'category' && k !== 'id')) found.add('core.invalid_envelope')
  for (const defect of [
    nameDefect(tenant_id, 64, TOKEN),
    nameDefect(type, 128, TOKEN),
    nameDefect(isObject(stream) ? stream.category : undefined, 64, TOKEN),
    nameDefect(isObject(stream) ? stream.id : undefined, 128, STREAM_ID),
    ...dataDefects(data),
  ]) {
    if (defect !== undefined) found.add(defect)
  }
  return [...found]
}

/** Stages 1–7: everything the gateway decides before it asks the store. */
export function checkBeforeStore(request: SubmitRequestModel): PreStore {
  if (request.body.byteLength > MAX_REQUEST_BYTES)
    return refuse('request body over the limit', 'core.payload_too_large')
  const tokens = request.subject.split('.')
  if (tokens.length !== 5 || tokens[0] !== 'eventplane-api' || tokens[1] !== 'submit')
    return refuse('subject shape', 'core.invalid_name')
  const [tenant, category, id] = tokens.slice(2) as [string, string, string]
  if (nameDefect(tenant, 64, TOKEN) || nameDefect(category, 64, TOKEN) || nameDefect(id, 128, STREAM_ID))
    return refuse('subject names', 'core.invalid_name')
  let body: unknown
  try {
    body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(request.body))
  } catch {
    return refuse('body is not UTF-8 JSON', 'bus.bad_request')
  }
  if (!isObject(body) || Object.keys(body).some((k) => k !== 'event' && k !== 'expectedVersion'))
    return refuse('body shape', 'bus.bad_request')
  const { event, expectedVersion } = body
  if (!isObject(event)) return refuse('event is not an object', 'bus.bad_request')
  const versionOk =
    expectedVersion === undefined ||
    expectedVersion === 'any' ||
    expectedVersion === 'no_stream' ||
    (typeof expectedVersion === 'number' && Number.isSafeInteger(expectedVersion) && expectedVersion >= 0)
  if (!versionOk) return refuse('expectedVersion', 'bus.bad_request')
  if (request.principal !== undefined && request.principal !== '' && !PRINCIPAL.test(request.principal))
    return refuse('principal header', 'bus.bad_request')
  const causedBy = request.principal ? `nats:${tenant}/${request.principal}` : `nats:${tenant}`
  const stamped: Record<string, unknown> = { ...event, caused_by: causedBy }
  const defects = envelopeDefects(stamped)
  if (defects.length > 0) return { refused: new Set(defects), why: 'envelope' }
  if (stamped.kind !== 'intent') return refuse('not an intent', 'bus.forbidden')
  // The runtime's derived ids are UUIDv5 (attack review 2026-12-02): no intent may hold one.
  if ((stamped.event_id as string)[14] === '5') return refuse('an id of the system’s version', 'core.invalid_envelope')
  if (stamped.tenant_id !== tenant) return refuse('tenant differs from the subject', 'core.tenant_mismatch')
  const stream = stamped.stream as { category: string; id: string }
  if (stream.category !== category || stream.id !== id)
    return refuse('stream differs from the subject', 'core.stream_mismatch')
  return {
    ready: {
      target: { tenant, category, id },
      event: stamped as unknown as ReadyForStore['event'],
      causedBy,
      expectedVersion: (expectedVersion ?? 'any') as ReadyForStore['expectedVersion'],
    },
  }
}

/**
 * Stage 8, lineage (gateway, 0009_lineage.sql): a cause must be an event of the same tenant and chain;
 * stage 9, the store (infra/postgres append_to_stream): version check, then insert or identical replay.
 */
export function storeOutcome(ready: ReadyForStore, facts: StoreFacts): Expectation {
  const { target, expectedVersion } = ready
  if (ready.event.causation_id !== null && !facts.parentInChain)
    return { refused: new Set(['core.invalid_envelope']), why: 'the cause is no event of this tenant and chain' }
  const identical =
    facts.existing?.sameContent === true &&
    facts.existing.tenant === target.tenant &&
    facts.existing.category === target.category &&
    facts.existing.id === target.id
  const expected = expectedVersion === 'any' ? -1 : expectedVersion === 'no_stream' ? 0 : expectedVersion
  if (expected >= 0 && facts.currentVersion !== expected) {
    return identical
      ? { ok: 'replay' }
      : {
          refused: new Set(['store.wrong_expected_version']),
          why: `stream at ${facts.currentVersion}, expected ${expected}`,
        }
  }
  if (facts.existing === undefined) return { ok: 'new' }
  return identical
    ? { ok: 'replay' }
    : { refused: new Set(['store.idempotency_conflict']), why: 'event id stored with other content or elsewhere' }
}

/** JSON with object keys sorted, so data compares equal however jsonb ordered it. */
export function sortedJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    isObject(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  )
}

/** Problems with a reply's shape: exactly `{ ok: {4 fields} }` or `{ error: { code, message[, details] } }`. */
export function replyShapeProblems(reply: unknown): string[] {
  if (!isObject(reply)) return ['reply is not a JSON object']
  const keys = Object.keys(reply)
  if (keys.length === 1 && keys[0] === 'ok' && isObject(reply.ok)) {
    const ok = reply.ok
    const problems: string[] = []
    if (sortedJson(Object.keys(ok).sort()) !== sortedJson(['correlation_id', 'event_id', 'position', 'stream_version']))
      problems.push(`ok has fields ${Object.keys(ok).join(',')}`)
    if (typeof ok.event_id !== 'string' || !UUID.test(ok.event_id)) problems.push('ok.event_id is not a UUID')
    if (typeof ok.correlation_id !== 'string' || !UUID.test(ok.correlation_id))
      problems.push('ok.correlation_id is not a UUID')
    if (!(typeof ok.stream_version === 'number' && Number.isSafeInteger(ok.stream_version) && ok.stream_version >= 1))
      problems.push('ok.stream_version')
    if (typeof ok.position !== 'string' || !/^[1-9]\d*$/.test(ok.position))
      problems.push('ok.position is not a decimal string')
    return problems
  }
  if (keys.length === 1 && keys[0] === 'error' && isObject(reply.error)) {
    const { code, message, details, ...rest } = reply.error
    const problems: string[] = []
    if (!(ERROR_CODES as readonly unknown[]).includes(code)) problems.push(`unknown error code ${JSON.stringify(code)}`)
    if (typeof message !== 'string' || message === '' || /[\r\n]/.test(message))
      problems.push(`message is not one non-empty line: ${JSON.stringify(message)}`)
    if (details !== undefined && !isObject(details)) problems.push('details is not an object')
    if (Object.keys(rest).length > 0) problems.push(`error has extra fields ${Object.keys(rest).join(',')}`)
    return problems
  }
  return [`reply has fields ${keys.join(',')}`]
}
