import {
  type ExpectedVersion,
  type IntentDraft,
  EventplaneError,
  PayloadTooLarge,
  envelopeStream,
  errorFromWire,
} from '@eventplane/core'
import { context } from '@opentelemetry/api'
import { type Msg, type NatsConnection, headers } from '@nats-io/transport-node'
import { PRINCIPAL_HEADER, type SubmitResult } from './gateway-request.ts'
import { natsFailure } from './nats-errors.ts'
import {
  SpanKind,
  TRACEPARENT_HEADER,
  activeContext,
  eventParentContext,
  inEventSpan,
  traceparentOf,
} from './ops/trace-context.ts'
import { submitSubjectFor } from './subjects.ts'

const encoder = new TextEncoder()

export interface SubmitIntentOptions {
  expectedVersion?: ExpectedVersion
  /** Default 5000 ms. */
  timeoutMs?: number
  /** Sent as the `Eventplane-Principal` header: who the client acts for, within its tenant. */
  principal?: string
}

/**
 * Submits one intent through the gateway and returns what was recorded. The
 * intent is unstamped (`draftIntent`): the gateway stamps `caused_by` and
 * replaces any the object carries.
 * Throws the gateway's typed error (same `code`), `bus.unavailable` when no
 * gateway answers, `bus.timeout` when the reply is late (the intent may have
 * been recorded: retry with the same event id), `bus.forbidden` when this
 * connection may not submit for the event's tenant, `bus.rate_limited` (a
 * `RateLimited` with `retryAfterMs`) when the tenant is over its limits at
 * the gateway (nothing was written: retry the same event later), and
 * `core.payload_too_large` for a request over what the connection may send.
 */
export async function submitIntent(
  nc: NatsConnection,
  event: IntentDraft,
  options: SubmitIntentOptions = {},
): Promise<SubmitResult> {
  // A draft from draftIntent carries names parsed in this process: the subject does not parse them again.
  const subject = submitSubjectFor(envelopeStream(event))
  const body = { event, ...(options.expectedVersion === undefined ? {} : { expectedVersion: options.expectedVersion }) }
  // The caller's active trace when it has one, else the event's own span context (trace id = correlation id).
  const parent = activeContext(context.active()) ?? eventParentContext(event, undefined)
  return inEventSpan('eventplane submit', SpanKind.CLIENT, event, parent, (span) =>
    request(nc, subject, body, options, traceparentOf(span)),
  )
}

async function request(
  nc: NatsConnection,
  subject: string,
  body: object,
  options: SubmitIntentOptions,
  traceparent: string | undefined,
): Promise<SubmitResult> {
  const h = options.principal === undefined && traceparent === undefined ? undefined : headers()
  if (options.principal !== undefined) h?.set(PRINCIPAL_HEADER, options.principal)
  if (traceparent !== undefined) h?.set(TRACEPARENT_HEADER, traceparent)
  const bytes = encoder.encode(JSON.stringify(body))
  // The server announces the largest message this connection may send (its account's limit, see
  // TenantAccountLimits); one over it would be refused by nats.js, or cost the connection.
  const maxPayload = nc.info?.max_payload
  if (maxPayload !== undefined && maxPayload > 0 && bytes.byteLength > maxPayload)
    throw new PayloadTooLarge(bytes.byteLength, maxPayload, 'the request')
  let msg: Msg
  try {
    msg = await nc.request(subject, bytes, {
      timeout: options.timeoutMs ?? 5000,
      ...(h ? { headers: h } : {}),
    })
  } catch (e) {
    throw natsFailure(e, `submit to ${subject}`)
  }
  let reply: unknown
  try {
    reply = msg.json()
  } catch {
    throw new EventplaneError('bus.bad_request', 'the gateway reply is not JSON')
  }
  const r = reply as Partial<{
    ok: SubmitResult
    error: { code: string; message: string; details?: Record<string, unknown> }
  }>
  if (r.ok && typeof r.ok.event_id === 'string') return r.ok
  if (r.error && typeof r.error.code === 'string') throw errorFromWire(r.error)
  throw new EventplaneError('bus.bad_request', 'the gateway reply has neither ok nor error')
}
