import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { type EventData, DEFAULT_MAX_DATA_BYTES, validateData } from './data.ts'
import { InvalidEnvelope } from './errors.ts'
import { NAME_LIMITS, validateCategory, validateStreamId, validateTenant, validateType } from './names.ts'
import { markSystemEnvelope, refuseReservedCategory, refuseReservedEventId } from './reserved.ts'
import type { SchemaRegistry } from './schema-registry.ts'
import { type StreamRef, type ValidStreamRef, isValidStreamRef, streamRef, trustedStreamRef } from './stream.ts'

export const EVENT_KINDS = ['intent', 'fact', 'internal'] as const
export type EventKind = (typeof EVENT_KINDS)[number]

const Uuid = Type.String({ pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' })
const MAX_CAUSED_BY = 200

/** The wire and storage form of an event, before the store records it (DESIGN §2). */
export const EventEnvelopeSchema = Type.Object(
  {
    event_id: Uuid,
    tenant_id: Type.String({ minLength: 1, maxLength: NAME_LIMITS.tenant }),
    kind: Type.Union(EVENT_KINDS.map((k) => Type.Literal(k))),
    stream: Type.Object(
      {
        category: Type.String({ minLength: 1, maxLength: NAME_LIMITS.category }),
        id: Type.String({ minLength: 1, maxLength: NAME_LIMITS['stream id'] }),
      },
      { additionalProperties: false },
    ),
    type: Type.String({ minLength: 1, maxLength: NAME_LIMITS.type }),
    schema_version: Type.Integer({ minimum: 1, maximum: 32767 }),
    data: Type.Record(Type.String(), Type.Unknown()),
    correlation_id: Uuid,
    causation_id: Type.Union([Uuid, Type.Null()]),
    caused_by: Type.String({ minLength: 1, maxLength: MAX_CAUSED_BY, pattern: '^[\\x21-\\x7e]+$' }),
    occurred_at: Type.String({ minLength: 20, maxLength: 40 }),
  },
  { additionalProperties: false },
)

export type EventEnvelope<D extends EventData = EventData> = Omit<Static<typeof EventEnvelopeSchema>, 'data'> & {
  data: D
}

declare const validEnvelope: unique symbol

/**
 * An envelope {@link validateEnvelope} (or the EventFactory, which calls it)
 * accepted in this process: the store trusts it and does not check it again;
 * anything else (a spread copy, a parsed body, a cast) is checked there.
 */
export type ValidEnvelope<D extends EventData = EventData> = EventEnvelope<D> & { readonly [validEnvelope]: true }

/** The envelopes validated in this process, by identity: a copy or a forgery is not among them. */
const validated = new WeakSet<object>()

/** True when `e` is an envelope validateEnvelope accepted in this process, not a copy of one. */
export function isValidEnvelope(e: unknown): e is ValidEnvelope {
  return typeof e === 'object' && e !== null && validated.has(e)
}

/** An envelope as the store recorded it. Positions are bigints, never floats. */
export type RecordedEvent<D extends EventData = EventData> = EventEnvelope<D> & {
  stream_version: number
  global_position: bigint
  tx_id: bigint
  recorded_at: string
}

const compiledEnvelope = TypeCompiler.Compile(EventEnvelopeSchema)
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})$/
/** Days of each month in a leap year (February's 29th is checked against the year). */
const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
const ZERO = 48

/** The two-digit number at `i` of a string whose shape ISO_INSTANT already checked. */
const two = (s: string, i: number): number => (s.charCodeAt(i) - ZERO) * 10 + s.charCodeAt(i + 1) - ZERO

/**
 * Whether `text` is an ISO-8601 instant naming a real moment: Date.parse rolls
 * 2024-02-30 over to March and PostgreSQL refuses it, so the fields are
 * checked one by one (year 1..9999, real day of month, offset under 16 h).
 * The shape is one regular expression without captures; the fields are read by position from the
 * characters (no match array, substrings, `Number`s or `Date`: a subscriber checks two instants per event).
 */
export function isIsoInstant(text: string): boolean {
  if (!ISO_INSTANT.test(text)) return false
  const year = two(text, 0) * 100 + two(text, 2)
  const month = two(text, 5)
  const day = two(text, 8)
  if (year < 1 || month < 1 || month > 12 || day < 1) return false
  if (day > DAYS_IN_MONTH[month - 1]! || (month === 2 && day === 29 && !isLeap(year))) return false
  if (two(text, 11) > 23 || two(text, 14) > 59 || two(text, 17) > 59) return false
  // The offset is the last six characters (`+hh:mm`) when the instant does not end in Z.
  const end = text.length
  return text.charCodeAt(end - 1) === 90 /* Z */ || (two(text, end - 5) <= 15 && two(text, end - 2) <= 59)
}

const isLeap = (y: number): boolean => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0

export interface EnvelopeCheckOptions {
  maxDataBytes?: number
  /** When given, `type@schema_version` must be registered and `data` must match it. */
  registry?: SchemaRegistry
  /**
   * The stream the envelope arrived for, already parsed here (for the
   * gateway, its subject): envelope names equal to a {@link ValidStreamRef}'s are
   * not parsed again; others are, and the caller compares them after.
   */
  stream?: StreamRef
}

/**
 * An intent as a client sends it to the gateway: every envelope field but
 * `caused_by`, which the edge stamps (invariant 7) with {@link stampIntent}.
 */
export type IntentDraft<D extends EventData = EventData> = Omit<EventEnvelope<D>, 'caused_by'>

const compiledDraft = TypeCompiler.Compile(Type.Omit(EventEnvelopeSchema, ['caused_by']))

function checkShape(check: typeof compiledEnvelope | typeof compiledDraft, value: unknown): void {
  if (check.Check(value)) return
  const first = check.Errors(value).First()
  const where = first ? `${first.path || '/'}: ${first.message}` : 'invalid'
  throw new InvalidEnvelope(`malformed event envelope at ${where}`)
}

/**
 * Everything but the shape: names, the instant, lineage, data and, with a registry, its schema. Exported
 * for fromWire, which checks the shape of a whole recorded event at once. Returns what validateData measured:
 * the data's size as the log stores it (-1 when `maxDataBytes` is Infinity).
 */
export function checkContent(e: IntentDraft, options: EnvelopeCheckOptions): number {
  if (!(isValidStreamRef(options.stream) && namesStream(e, options.stream))) {
    validateTenant(e.tenant_id)
    validateCategory(e.stream.category)
    validateStreamId(e.stream.id)
  }
  validateType(e.type)
  if (!isIsoInstant(e.occurred_at)) {
    throw new InvalidEnvelope('occurred_at must be an ISO-8601 instant')
  }
  if (e.causation_id === null && e.correlation_id !== e.event_id) {
    throw new InvalidEnvelope('a root event (no causation_id) must have correlation_id = event_id')
  }
  if (e.causation_id === e.event_id) throw new InvalidEnvelope('an event cannot cause itself')
  const dataBytes = validateData(e.data, options.maxDataBytes ?? DEFAULT_MAX_DATA_BYTES)
  options.registry?.validate(e.type, e.schema_version, e.data)
  return dataBytes
}

/** True when `e` names exactly the stream `s`. */
function namesStream(e: Pick<IntentDraft, 'tenant_id' | 'stream'>, s: StreamRef): boolean {
  return e.tenant_id === s.tenant && e.stream.category === s.category && e.stream.id === s.id
}

/**
 * Checks an envelope that crossed a boundary (gateway, import, a log
 * message): shape, names, lineage, data. Throws a typed error; returns the
 * same object as a {@link ValidEnvelope}, which the store then trusts.
 */
export function validateEnvelope(value: unknown, options: EnvelopeCheckOptions = {}): ValidEnvelope {
  admitEnvelope(value, options)
  return value as ValidEnvelope
}

/** validateEnvelope's checks and its mark on `value`; returns the data's stored size ({@link checkContent}'s). */
function admitEnvelope(value: unknown, options: EnvelopeCheckOptions): number {
  checkShape(compiledEnvelope, value)
  const dataBytes = checkContent(value as EventEnvelope, options)
  validated.add(value as EventEnvelope)
  return dataBytes
}

/**
 * Checks an intent draft (an envelope without `caused_by`, see
 * {@link IntentDraft}) as validateEnvelope checks an envelope: a client
 * refuses bad input before sending it, a reserved category and an id of the
 * system's version included (no intent is ever the system's). The gateway checks it again when it stamps
 * it (another process, another boundary), and its store refuses a reserved
 * category there.
 */
export function validateIntentDraft(value: unknown, options: EnvelopeCheckOptions = {}): IntentDraft {
  checkShape(compiledDraft, value)
  const draft = value as IntentDraft
  checkContent(draft, options)
  refuseReservedCategory(draft.stream.category)
  refuseReservedEventId(draft.event_id)
  checkedDrafts.add(draft)
  return draft
}

/** The drafts validateIntentDraft accepted in this process, by identity (their names are parsed). */
const checkedDrafts = new WeakSet<object>()

/**
 * The stream an envelope or draft names, as a {@link ValidStreamRef}: free
 * (no parse) for one validated in this process, parsed for anything else.
 */
export function envelopeStream(e: Pick<IntentDraft, 'tenant_id' | 'stream'>): ValidStreamRef {
  if (validated.has(e) || checkedDrafts.has(e)) return trustedStreamRef(e.tenant_id, e.stream.category, e.stream.id)
  return streamRef(e.tenant_id, e.stream.category, e.stream.id)
}

/**
 * `stream` as a {@link ValidStreamRef}: itself when parsed in this process;
 * free when it names the stream of `trusted`, an envelope validated here;
 * parsed otherwise (typed errors for bad names).
 */
export function ensureStreamRef(stream: StreamRef, trusted?: object): ValidStreamRef {
  if (isValidStreamRef(stream)) return stream
  if (trusted !== undefined && validated.has(trusted) && namesStream(trusted as EventEnvelope, stream))
    return trustedStreamRef(stream.tenant, stream.category, stream.id)
  return streamRef(stream.tenant, stream.category, stream.id)
}

/**
 * The edge's stamp (invariant 7): `draft` with `caused_by = principal`,
 * validated once (shape, names, lineage, data, schema) into a
 * {@link ValidEnvelope} the store appends without checking it again. A
 * `caused_by` the client sent anyway is replaced, never trusted.
 */
export function stampIntent(draft: object, principal: string, options: EnvelopeCheckOptions = {}): ValidEnvelope {
  return stampIntentMeasured(draft, principal, options).event
}

/**
 * {@link stampIntent}, with the size of the event's data as the log stores it (`storedDataBytes`), which
 * the validation measured: the gateway charges it to the tenant's byte rate without walking the data again.
 */
export function stampIntentMeasured(
  draft: object,
  principal: string,
  options: EnvelopeCheckOptions = {},
): { event: ValidEnvelope; dataBytes: number } {
  const e = { ...draft, caused_by: principal }
  const dataBytes = admitEnvelope(e, options)
  return { event: e as ValidEnvelope, dataBytes }
}

/**
 * Vouches for `e`, an envelope validated in this process, as the system's own (see isSystemEnvelope):
 * the store then appends it to a reserved category. For the system's writers only (an operator's import
 * restores a log's reserved streams); tenant input never reaches it. Anything not validated here is refused.
 */
export function asSystemEnvelope<E extends ValidEnvelope>(e: E): E {
  if (!isValidEnvelope(e)) throw new InvalidEnvelope("only an envelope validated in this process can be the system's")
  return markSystemEnvelope(e)
}
