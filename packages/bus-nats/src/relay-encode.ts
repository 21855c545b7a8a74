import type { EventKind } from '@eventplane/core'
import type { EventTextRow } from '@eventplane/store-pg'
import { type MsgHdrs, headers } from '@nats-io/transport-node'
import { EVENT_HEADERS } from './codec.ts'
import { logSubject } from './subjects.ts'

/** One log row ready to publish: its subject, headers and wire bytes, and what the relay logs and checkpoints. */
export interface RelayMessage {
  eventId: string
  correlationId: string
  causationId: string | null
  tenantId: string
  type: string
  txId: bigint
  position: bigint
  subject: string
  headers: MsgHdrs
  bytes: Uint8Array
}

const utf8Encoder = new TextEncoder()
const str = JSON.stringify

/**
 * The relay's encoding of a row read as text (store-pg readAllText): the same
 * wire form as codec.ts `encodeEvent` (same fields, same order; positions as
 * decimal strings), built by concatenation with `data` spliced in as the JSON
 * text PostgreSQL produced, so the relay never parses and re-encodes event
 * data. `relay-encode.test.ts` holds the two forms equal.
 */
export function relayMessage(row: EventTextRow): RelayMessage {
  const json =
    `{"event_id":${str(row.event_id)},"tenant_id":${str(row.tenant_id)},"kind":${str(row.kind)},` +
    `"stream":{"category":${str(row.category)},"id":${str(row.stream_id)}},"type":${str(row.type)},` +
    `"schema_version":${row.schema_version},"data":${row.data},"correlation_id":${str(row.correlation_id)},` +
    `"causation_id":${row.causation_id === null ? 'null' : str(row.causation_id)},"caused_by":${str(row.caused_by)},` +
    `"occurred_at":${str(row.occurred_at)},"stream_version":${Number(row.stream_version)},` +
    `"global_position":"${row.global_position}","tx_id":"${row.tx_id}","recorded_at":${str(row.recorded_at)}}`
  const h = headers()
  h.set(EVENT_HEADERS.msgId, row.event_id)
  h.set(EVENT_HEADERS.txId, row.tx_id)
  h.set(EVENT_HEADERS.position, row.global_position)
  h.set(EVENT_HEADERS.tenant, row.tenant_id)
  return {
    eventId: row.event_id,
    correlationId: row.correlation_id,
    causationId: row.causation_id,
    tenantId: row.tenant_id,
    type: row.type,
    txId: BigInt(row.tx_id),
    position: BigInt(row.global_position),
    subject: logSubject(row.kind as EventKind, row.tenant_id, row.category, row.stream_id),
    headers: h,
    bytes: utf8Encoder.encode(json),
  }
}
