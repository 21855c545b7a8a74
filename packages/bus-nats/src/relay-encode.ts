import type { EventKind } from '@eventplane/core'
import type { EventTextRow } from '@eventplane/store-pg'
import type { MsgHdrsImpl } from '@nats-io/transport-node'
import { logHeaders } from './codec.ts'
import { type EventForSpan, TRACEPARENT_HEADER, eventTraceparent } from './ops/trace-context.ts'
import { logSubject } from './subjects.ts'

/** One log row ready to publish: its subject, headers and wire bytes, and what the relay logs and checkpoints. */
export interface RelayMessage {
  /** The fields its spans and logs name (ids, tenant, type). */
  event: Required<EventForSpan>
  txId: bigint
  position: bigint
  subject: string
  /** The log headers and the `traceparent` of the event's own span context (what a publish without an SDK sends). */
  headers: MsgHdrsImpl
  bytes: Uint8Array
}

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
  const subject = logSubject(row.kind as EventKind, row.tenant_id, row.category, row.stream_id)
  const headers = logHeaders(row.event_id, row.tx_id, row.global_position, row.tenant_id)
  headers.headers.set(TRACEPARENT_HEADER, [eventTraceparent(row)])
  return {
    // The row has every field spans and logs name; a copy of them would be one more object per event.
    event: row,
    txId: BigInt(row.tx_id),
    position: BigInt(row.global_position),
    subject,
    headers,
    // Buffer.from slices small strings out of a shared pool: one allocation less per event than TextEncoder.
    bytes: Buffer.from(json, 'utf8'),
  }
}
