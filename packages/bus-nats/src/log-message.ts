import { type RecordedEvent, EventplaneError } from '@eventplane/core'
import type { MsgHdrs } from '@nats-io/transport-node'
import { decodeEvent, readEventHeaders } from './codec.ts'
import { receivedHeaders } from './header-block.ts'
import { logSubject } from './subjects.ts'

/** Why a message on a log subject was not accepted as an event. */
export type UntrustedReason = 'no_relay_headers' | 'undecodable' | 'headers_disagree' | 'subject_disagrees'

/**
 * A message on a log subject that the relay did not publish as it is: refused
 * by every consumer of the log (counted, logged by ids, dropped or terminated),
 * never applied.
 */
export class UntrustedLogMessage extends EventplaneError {
  constructor(
    readonly reason: UntrustedReason,
    subject: string,
    eventId: string | undefined,
    options: { cause?: unknown } = {},
  ) {
    super('bus.untrusted_message', `message on ${subject} refused: ${reason.replace(/_/g, ' ')}`, {
      ...options,
      details: { reason, subject, ...(eventId === undefined ? {} : { event_id: eventId }) },
    })
  }
}

/** What a consumer sees of a log message. */
export interface LogMessage {
  subject: string
  headers?: MsgHdrs
  data: Uint8Array
}

/**
 * The event a log message carries, accepted only as the relay publishes it:
 * with the relay's headers (`Nats-Msg-Id` = the event id, and the tenant, tx
 * id and position of the body), and on exactly the subject the event's own
 * kind, tenant, category and id name. Anything else, such as a reply some
 * service was tricked into sending onto a log subject, or an event copied
 * onto another tenant's subject, throws {@link UntrustedLogMessage}.
 */
export function acceptLogMessage(msg: LogMessage): RecordedEvent {
  // A message as nats.js received it has its header block decoded by receivedHeaders (nats.js's map, cheaper).
  const h = readEventHeaders(receivedHeaders(msg))
  if (h === undefined) throw new UntrustedLogMessage('no_relay_headers', msg.subject, undefined)
  let event: RecordedEvent
  try {
    event = decodeEvent(msg.data)
  } catch (e) {
    throw new UntrustedLogMessage('undecodable', msg.subject, h.eventId, { cause: e })
  }
  if (
    h.eventId !== event.event_id ||
    h.tenant !== event.tenant_id ||
    h.position !== event.global_position ||
    h.txId !== event.tx_id
  )
    throw new UntrustedLogMessage('headers_disagree', msg.subject, h.eventId)
  if (msg.subject !== logSubject(event.kind, event.tenant_id, event.stream.category, event.stream.id))
    throw new UntrustedLogMessage('subject_disagrees', msg.subject, event.event_id)
  return event
}

/** Log fields of a refused message: ids and the reason, never its content. */
export function untrustedFields(e: unknown): Record<string, unknown> {
  if (e instanceof UntrustedLogMessage) return { code: e.code, ...e.details }
  return { code: 'bus.untrusted_message' }
}
