import { Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { EventData } from './data.ts'
import {
  type EnvelopeCheckOptions,
  type EventEnvelope,
  type EventKind,
  type RecordedEvent,
  type ValidEnvelope,
  EventEnvelopeSchema,
  checkContent,
  isIsoInstant,
  validateEnvelope,
} from './envelope.ts'
import { InvalidEnvelope } from './errors.ts'

/** What `caused_by` becomes when it is masked: a valid principal, so a masked line still imports. */
export const REDACTED_ACTOR = 'redacted'

/**
 * The JSON form of a recorded event, the same at every boundary: a NATS log
 * message body, an NDJSON export line, each event of evtctl's `--json`
 * output. Positions are decimal strings (never through a float), instants
 * ISO-8601 strings, `stream` the envelope's `{ category, id }` (the tenant is
 * `tenant_id`). `caused_by` and `data` are absent only when redacted.
 */
export interface WireEvent {
  event_id: string
  tenant_id: string
  kind: EventKind
  stream: { category: string; id: string }
  type: string
  schema_version: number
  data?: EventData
  correlation_id: string
  causation_id: string | null
  caused_by?: string
  occurred_at: string
  stream_version: number
  global_position: string
  tx_id: string
  recorded_at: string
}

export interface WireRedaction {
  /**
   * `caused_by` (a principal: personal data in most deployments): `drop`
   * leaves it out, `mask` writes {@link REDACTED_ACTOR} (a backup that must
   * still import).
   */
  actor?: 'drop' | 'mask'
  /** Leave `data` out (views of the flow, not the payload). */
  data?: boolean
}

export interface ToWireOptions {
  /** What a reader of this output may not see; by default every field is kept. */
  redact?: WireRedaction
}

/** A recorded event in its wire form (see {@link WireEvent}). */
export function toWire(e: RecordedEvent, options: ToWireOptions = {}): WireEvent {
  const redact = options.redact
  const wire: WireEvent = {
    event_id: e.event_id,
    tenant_id: e.tenant_id,
    kind: e.kind,
    stream: { category: e.stream.category, id: e.stream.id },
    type: e.type,
    schema_version: e.schema_version,
    data: e.data,
    correlation_id: e.correlation_id,
    causation_id: e.causation_id,
    caused_by: e.caused_by,
    occurred_at: e.occurred_at,
    stream_version: e.stream_version,
    global_position: e.global_position.toString(),
    tx_id: e.tx_id.toString(),
    recorded_at: e.recorded_at,
  }
  if (redact === undefined) return wire
  if (redact.data) delete wire.data
  if (redact.actor === 'drop') delete wire.caused_by
  else if (redact.actor === 'mask') wire.caused_by = REDACTED_ACTOR
  return wire
}

const DECIMAL = /^(0|[1-9]\d{0,19})$/

export interface FromWireOptions extends EnvelopeCheckOptions {
  /** What the value is, for messages ("log message", "line 3"); default "event". */
  label?: string
}

function splitWire(
  value: unknown,
  label: string,
): { envelope: Record<string, unknown>; server: Record<string, unknown> } {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidEnvelope(`${label} is not a JSON object`)
  // A rest copy, not a spread and `delete`s: deleting keys turns the copy into a slow dictionary object,
  // which every later check of the envelope then pays for (a subscriber decodes one per event).
  const { stream_version, global_position, tx_id, recorded_at, ...envelope } = value as Record<string, unknown>
  return { envelope, server: { stream_version, global_position, tx_id, recorded_at } }
}

/**
 * A wire event back as a recorded event: the envelope validated (shape,
 * names, lineage, data; `options` as for validateEnvelope) and the store's
 * columns checked. Throws a typed error (`core.*`); never returns a partly
 * filled event. A redacted wire event (no `data` or `caused_by`) is refused.
 */
export function fromWire(value: unknown, options: FromWireOptions = {}): RecordedEvent {
  const label = options.label ?? 'event'
  if (compiledRecorded.Check(value)) return checkedRecorded(value as WireShape, label, options)
  const { envelope, server } = splitWire(value, label)
  const valid = validateEnvelope(envelope, options)
  const { stream_version, global_position, tx_id, recorded_at } = server
  if (typeof stream_version !== 'number' || !Number.isSafeInteger(stream_version) || stream_version < 1)
    throw new InvalidEnvelope(`${label} has no valid stream_version`)
  if (typeof global_position !== 'string' || !DECIMAL.test(global_position))
    throw new InvalidEnvelope(`${label} has no valid global_position`)
  if (typeof tx_id !== 'string' || !DECIMAL.test(tx_id)) throw new InvalidEnvelope(`${label} has no valid tx_id`)
  if (typeof recorded_at !== 'string' || !isIsoInstant(recorded_at))
    throw new InvalidEnvelope(`${label} has no valid recorded_at`)
  return {
    ...valid,
    stream_version,
    global_position: BigInt(global_position),
    tx_id: BigInt(tx_id),
    recorded_at,
  }
}

/**
 * The shape of a whole wire event (the envelope's, no other fields, the store's columns as strings and a
 * number): a value that has it is checked in place and copied once. One that does not takes fromWire's
 * field-by-field path, whose errors say what is wrong.
 */
const compiledRecorded = TypeCompiler.Compile(
  Type.Object(
    {
      ...EventEnvelopeSchema.properties,
      stream_version: Type.Number(),
      global_position: Type.String(),
      tx_id: Type.String(),
      recorded_at: Type.String(),
    },
    { additionalProperties: false },
  ),
)

type WireShape = EventEnvelope & {
  stream_version: number
  global_position: string
  tx_id: string
  recorded_at: string
}

/** fromWire for a value of the whole wire shape: the same checks, in the same order, and no copies in between. */
function checkedRecorded(w: WireShape, label: string, options: FromWireOptions): RecordedEvent {
  checkContent(w, options)
  const { stream_version, global_position, tx_id, recorded_at } = w
  if (!Number.isSafeInteger(stream_version) || stream_version < 1)
    throw new InvalidEnvelope(`${label} has no valid stream_version`)
  if (!DECIMAL.test(global_position)) throw new InvalidEnvelope(`${label} has no valid global_position`)
  if (!DECIMAL.test(tx_id)) throw new InvalidEnvelope(`${label} has no valid tx_id`)
  if (!isIsoInstant(recorded_at)) throw new InvalidEnvelope(`${label} has no valid recorded_at`)
  return {
    event_id: w.event_id,
    tenant_id: w.tenant_id,
    kind: w.kind,
    stream: w.stream,
    type: w.type,
    schema_version: w.schema_version,
    data: w.data,
    correlation_id: w.correlation_id,
    causation_id: w.causation_id,
    caused_by: w.caused_by,
    occurred_at: w.occurred_at,
    stream_version,
    global_position: BigInt(global_position),
    tx_id: BigInt(tx_id),
    recorded_at,
  }
}

/**
 * The envelope of a wire event, to append it again (an import): the store's
 * columns are dropped unchecked (the store assigns them anew), the rest is
 * validated as by validateEnvelope; any refusal is `core.invalid_envelope`
 * with `label` before its message (the line of a file that is wrong).
 */
export function envelopeFromWire(value: unknown, options: FromWireOptions = {}): ValidEnvelope {
  const label = options.label ?? 'event'
  const { envelope } = splitWire(value, label)
  try {
    return validateEnvelope(envelope, options)
  } catch (e) {
    throw new InvalidEnvelope(`${label}: ${(e as Error).message}`)
  }
}
