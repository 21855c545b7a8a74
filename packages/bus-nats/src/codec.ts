import { type RecordedEvent, InvalidEnvelope, validateEnvelope } from '@eventplane/core'
import { type MsgHdrs, headers } from '@nats-io/transport-node'

/** Header names the relay stamps on every log message. */
export const EVENT_HEADERS = {
  /** JetStream's de-duplication key: the event id, so a republished event is dropped within the duplicate window. */
  msgId: 'Nats-Msg-Id',
  txId: 'Eventplane-Tx-Id',
  position: 'Eventplane-Position',
  tenant: 'Eventplane-Tenant',
} as const

/** What the headers of a log message say, without decoding the body. */
export interface EventHeaderValues {
  eventId: string
  txId: bigint
  position: bigint
  tenant: string
}

/** The JSON wire form: a RecordedEvent with its bigints as decimal strings. */
interface WireEvent extends Omit<RecordedEvent, 'global_position' | 'tx_id'> {
  global_position: string
  tx_id: string
}

const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder('utf-8', { fatal: true })
const DECIMAL = /^(0|[1-9]\d{0,19})$/
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/
/** Decoding checks shape and lineage, not the producer's size policy (the store enforced it on append). */
const NO_SIZE_LIMIT = Number.MAX_SAFE_INTEGER

/**
 * The bytes of a log message: every field of the recorded event (lineage,
 * `caused_by`, store positions included), positions as decimal strings so
 * they never pass through a float.
 */
export function encodeEvent(e: RecordedEvent): Uint8Array {
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
  return utf8Encoder.encode(JSON.stringify(wire))
}

/**
 * Parses and validates a log message body. Throws `core.invalid_envelope`
 * (or the envelope's own typed error) for anything that is not a complete
 * recorded event; never returns a partially filled event.
 */
export function decodeEvent(bytes: Uint8Array): RecordedEvent {
  let value: unknown
  try {
    value = JSON.parse(utf8Decoder.decode(bytes))
  } catch (e) {
    throw new InvalidEnvelope(`log message is not UTF-8 JSON: ${(e as Error).message.split('\n')[0]}`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidEnvelope('log message is not a JSON object')
  const { stream_version, global_position, tx_id, recorded_at, ...envelope } = value as Record<string, unknown>
  validateEnvelope(envelope, { maxDataBytes: NO_SIZE_LIMIT })
  if (typeof stream_version !== 'number' || !Number.isSafeInteger(stream_version) || stream_version < 1) {
    throw new InvalidEnvelope('log message has no valid stream_version')
  }
  if (typeof global_position !== 'string' || !DECIMAL.test(global_position))
    throw new InvalidEnvelope('log message has no valid global_position')
  if (typeof tx_id !== 'string' || !DECIMAL.test(tx_id)) throw new InvalidEnvelope('log message has no valid tx_id')
  if (typeof recorded_at !== 'string' || !ISO_INSTANT.test(recorded_at))
    throw new InvalidEnvelope('log message has no valid recorded_at')
  return {
    ...(envelope as unknown as Omit<RecordedEvent, 'stream_version' | 'global_position' | 'tx_id' | 'recorded_at'>),
    stream_version,
    global_position: BigInt(global_position),
    tx_id: BigInt(tx_id),
    recorded_at,
  }
}

/** The headers the relay publishes with: `Nats-Msg-Id` = event id, plus tx id, position and tenant. */
export function eventHeaders(e: RecordedEvent): MsgHdrs {
  const h = headers()
  h.set(EVENT_HEADERS.msgId, e.event_id)
  h.set(EVENT_HEADERS.txId, e.tx_id.toString())
  h.set(EVENT_HEADERS.position, e.global_position.toString())
  h.set(EVENT_HEADERS.tenant, e.tenant_id)
  return h
}

/** Reads the relay's headers back; `undefined` when a message lacks them (not published by the relay). */
export function readEventHeaders(h: MsgHdrs | undefined): EventHeaderValues | undefined {
  if (h === undefined) return undefined
  const eventId = h.get(EVENT_HEADERS.msgId)
  const txId = h.get(EVENT_HEADERS.txId)
  const position = h.get(EVENT_HEADERS.position)
  const tenant = h.get(EVENT_HEADERS.tenant)
  if (!eventId || !tenant || !DECIMAL.test(txId) || !DECIMAL.test(position)) return undefined
  return { eventId, txId: BigInt(txId), position: BigInt(position), tenant }
}
