import { type ApiError, JetStreamApiError, JetStreamError } from '@nats-io/jetstream'
import type { Msg } from '@nats-io/transport-node'
import { noStreamTakes } from './nats-errors.ts'

/** The header JetStream checks against the stream's last message id (nats-server `JSExpectedLastMsgId`). */
export const EXPECTED_LAST_MSG_ID = 'Nats-Expected-Last-Msg-Id'

const NO_RESPONDERS = 503
const utf8Decoder = new TextDecoder()

/**
 * Reads JetStream's answer to one publish, as nats.js `js.publish` does but
 * without its per-request `Error` objects: returns whether the stream already
 * held the message (a duplicate `Nats-Msg-Id`), or throws what went wrong —
 * `bus.unavailable` when no stream takes `subject` (the stream was deleted,
 * JetStream is down), `JetStreamApiError` with the server's `err_code` when
 * the stream refused it (an `Nats-Expected-Last-Msg-Id` mismatch, a limit),
 * `JetStreamError` for anything that is not an ack of `stream`. The same
 * error classes nats-errors.ts maps to codes for the other publish paths.
 */
export function readPubAck(m: Msg, subject: string, stream: string): boolean {
  if (m.headers?.code === NO_RESPONDERS) throw noStreamTakes(subject)
  let ack: { stream?: unknown; duplicate?: unknown; error?: ApiError }
  try {
    ack = JSON.parse(utf8Decoder.decode(m.data))
  } catch {
    throw new JetStreamError(`the answer to a publish on ${subject} is not JSON`)
  }
  if (typeof ack !== 'object' || ack === null) throw new JetStreamError(`invalid ack for ${subject}`)
  if (ack.error !== undefined) throw new JetStreamApiError(ack.error)
  if (ack.stream !== stream)
    throw new JetStreamError(`a publish on ${subject} was acked by stream ${String(ack.stream)}, not ${stream}`)
  return ack.duplicate === true
}
