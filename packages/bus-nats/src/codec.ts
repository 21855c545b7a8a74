import { type RecordedEvent, InvalidEnvelope, fromWire, toWire } from '@eventplane/core'
import { type MsgHdrs, MsgHdrsImpl } from '@nats-io/transport-node'

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

const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder('utf-8', { fatal: true })
const DECIMAL = /^(0|[1-9]\d{0,19})$/
/**
 * Decoding checks shape and lineage, not the producer's size policy (the store enforced it on append, and
 * the body is bounded by NATS's max_payload): Infinity also spares re-serializing `data` to measure it.
 */
const NO_SIZE_LIMIT = Number.POSITIVE_INFINITY

/**
 * The bytes of a log message: core's wire form of the recorded event, every
 * field (lineage, `caused_by`, store positions), positions as decimal strings.
 */
export function encodeEvent(e: RecordedEvent): Uint8Array {
  return utf8Encoder.encode(JSON.stringify(toWire(e)))
}

/**
 * Parses and validates a log message body (core's `fromWire`). Throws
 * `core.invalid_envelope` (or the envelope's own typed error) for anything
 * that is not a complete recorded event; never returns a partially filled event.
 */
export function decodeEvent(bytes: Uint8Array): RecordedEvent {
  let value: unknown
  try {
    value = JSON.parse(utf8Decoder.decode(bytes))
  } catch (e) {
    throw new InvalidEnvelope(`log message is not UTF-8 JSON: ${(e as Error).message.split('\n')[0]}`)
  }
  return fromWire(value, { maxDataBytes: NO_SIZE_LIMIT, label: 'log message' })
}

/** The headers the relay publishes with: `Nats-Msg-Id` = event id, plus tx id, position and tenant. */
export function eventHeaders(e: RecordedEvent): MsgHdrs {
  return logHeaders(e.event_id, e.tx_id.toString(), e.global_position.toString(), e.tenant_id)
}

/**
 * {@link eventHeaders} from a row's text columns (what the relay reads): the one writer of these headers.
 * The values are ids, decimal positions and a validated tenant name (no CR or LF), so they go into the
 * header map as they are: nats.js `set` validates, canonicalizes and searches the keys on every call,
 * which the relay would pay four times per event.
 */
export function logHeaders(eventId: string, txId: string, position: string, tenant: string): MsgHdrsImpl {
  const h = new MsgHdrsImpl()
  h.headers.set(EVENT_HEADERS.msgId, [eventId])
  h.headers.set(EVENT_HEADERS.txId, [txId])
  h.headers.set(EVENT_HEADERS.position, [position])
  h.headers.set(EVENT_HEADERS.tenant, [tenant])
  return h
}

/** Reads the relay's headers back; `undefined` when a message lacks them (not published by the relay). */
export function readEventHeaders(h: MsgHdrs | undefined): EventHeaderValues | undefined {
  if (h === undefined) return undefined
  const eventId = headerValue(h, EVENT_HEADERS.msgId)
  const txId = headerValue(h, EVENT_HEADERS.txId)
  const position = headerValue(h, EVENT_HEADERS.position)
  const tenant = headerValue(h, EVENT_HEADERS.tenant)
  if (!eventId || !tenant || !DECIMAL.test(txId) || !DECIMAL.test(position)) return undefined
  return { eventId, txId: BigInt(txId), position: BigInt(position), tenant }
}

/**
 * `h.get(name)` (exact match, first value, `''` when absent) read straight from the map of a decoded
 * header block: nats.js `get` lists and filters every key on each call, five times per delivered event.
 */
export function headerValue(h: MsgHdrs, name: string): string {
  if (h instanceof MsgHdrsImpl) return h.headers.get(name)?.[0] ?? ''
  return h.get(name)
}
