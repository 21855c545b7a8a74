import {
  type ErrorCode,
  type ExpectedVersion,
  type IntentDraft,
  type SchemaRegistry,
  type StreamRef,
  DEFAULT_MAX_DATA_BYTES,
  EXPECTED_VERSION_RULE,
  EventplaneError,
  Forbidden,
  InvalidEnvelope,
  PayloadTooLarge,
  StreamMismatch,
  TenantMismatch,
  formatStream,
  isExpectedVersion,
  refuseReservedEventId,
  stampIntentMeasured,
  storedDataBytes,
} from '@eventplane/core'
import { type PgEventStore, causationInChain } from '@eventplane/store-pg'
import { SpanKind, eventParentContext, inEventSpan } from './ops/trace-context.ts'
import { type SubmitTarget, parseSubmitSubject } from './subjects.ts'

/** Header a client may set to name who it acts for; the gateway scopes it under the tenant it authenticated. */
export const PRINCIPAL_HEADER = 'Eventplane-Principal'

/**
 * The request body sent to `eventplane-api.submit.<tenant>.<category>.<id>`:
 * an unstamped intent (the gateway stamps `caused_by`; one sent anyway is
 * replaced) and the optimistic concurrency check.
 */
export interface SubmitRequest {
  event: IntentDraft
  expectedVersion?: ExpectedVersion
}

/** A request body as parsed, its event not yet checked: {@link submit} stamps and validates it once. */
interface ParsedRequest {
  event: object
  expectedVersion?: ExpectedVersion
}

/** What the gateway recorded; `position` is the global position as a decimal string. */
export interface SubmitResult {
  event_id: string
  correlation_id: string
  stream_version: number
  position: string
}

export interface WireError {
  code: ErrorCode
  message: string
  details?: Record<string, unknown>
}

export type SubmitReply = { ok: SubmitResult } | { error: WireError }

/** Everything one submit needs besides the message itself. */
export interface SubmitContext {
  store: PgEventStore
  registry?: SchemaRegistry
  maxPayloadBytes: number
  maxDataBytes: number
  /** The principal to stamp as `caused_by`. */
  principal(target: SubmitTarget, claimed: string | undefined): string
  /**
   * Called with the bytes by which the event's data as the log stores it exceeds the request body, once
   * the request passed its checks and before it is appended: the gateway charges them to the tenant's byte
   * rate, so that rate bounds what the tenant adds to the shared log and stream, not only what it sends.
   */
  chargeStoredBytes?(bytes: number): void
}

/** Room for the envelope around the largest allowed data. */
export const DEFAULT_MAX_REQUEST_BYTES = DEFAULT_MAX_DATA_BYTES + 16 * 1024
const CLAIMED_PRINCIPAL = /^[\x21-\x7e]{1,120}$/
const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * The default `caused_by`: `nats:<tenant>`, or `nats:<tenant>/<claimed>` when
 * the client named a principal in the header. The header is the client's own
 * claim, so it is kept under the tenant the NATS permissions vouch for (the
 * subject) and can never pass for a controller or another tenant's user.
 */
export function defaultPrincipal(target: StreamRef, claimed: string | undefined): string {
  if (claimed === undefined || claimed === '') return `nats:${target.tenant}`
  if (!CLAIMED_PRINCIPAL.test(claimed))
    throw badRequest(`${PRINCIPAL_HEADER} must be 1-120 printable ASCII characters without spaces`)
  return `nats:${target.tenant}/${claimed}`
}

function badRequest(message: string): EventplaneError {
  return new EventplaneError('bus.bad_request', message)
}

function parseBody(payload: Uint8Array): ParsedRequest {
  let body: unknown
  try {
    body = JSON.parse(utf8.decode(payload))
  } catch {
    throw badRequest('request body is not UTF-8 JSON')
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw badRequest('request body must be a JSON object')
  const { event, expectedVersion, ...rest } = body as Record<string, unknown>
  const extra = Object.keys(rest)
  if (extra.length > 0) throw badRequest(`unknown request field ${JSON.stringify(extra[0])}`)
  if (typeof event !== 'object' || event === null || Array.isArray(event))
    throw badRequest('request needs an "event" object')
  if (expectedVersion === undefined) return { event }
  if (!isExpectedVersion(expectedVersion)) throw badRequest(EXPECTED_VERSION_RULE)
  return { event, expectedVersion }
}

/** The one answer for a causation id this tenant cannot use, whether it exists elsewhere or not at all. */
export const FOREIGN_CAUSATION_MESSAGE =
  'causation_id must name an event of the same tenant and the same correlation chain'

/**
 * A child never leaves its parent's tenant (invariant 2): the parent must be
 * an event of this tenant, in the chain the child claims. Asked under the
 * tenant's row level security, so another tenant's event and no event at all
 * look the same and get the same error: the answer says nothing about others.
 */
async function checkLineage(store: PgEventStore, tenant: string, causationId: string, correlationId: string) {
  if (!(await causationInChain(store.sql, tenant, causationId, correlationId)))
    throw new InvalidEnvelope(FOREIGN_CAUSATION_MESSAGE)
}

/**
 * Validates and records one submitted intent. Checks, in order: size, the
 * subject's names, the body, the envelope (names, lineage, data, schema),
 * kind = intent, an id not of the system's version (core's
 * `RESERVED_EVENT_ID_VERSION`), tenant and stream against the subject, and that a cause is
 * an event of the same tenant and chain; then stamps `caused_by` and
 * appends. Nothing is written unless every check passed.
 * Throws typed errors; the caller turns them into the reply.
 */
export async function submit(
  subject: string,
  payload: Uint8Array,
  claimed: string | undefined,
  ctx: SubmitContext,
  traceparent?: string,
): Promise<SubmitResult> {
  if (payload.byteLength > ctx.maxPayloadBytes)
    throw new PayloadTooLarge(payload.byteLength, ctx.maxPayloadBytes, 'the request body')
  const target = parseSubmitSubject(subject)
  const request = parseBody(payload)
  // The one validation of this request in this process: the store trusts the stamped envelope, and
  // names equal to the subject's (parsed above) are not parsed again.
  const { event, dataBytes } = stampIntentMeasured(request.event, ctx.principal(target, claimed), {
    registry: ctx.registry,
    maxDataBytes: ctx.maxDataBytes,
    stream: target,
  })
  if (event.kind !== 'intent')
    throw new Forbidden('bus.forbidden', `the gateway accepts intents only, not ${event.kind} events`)
  // The runtime's derived ids (UUIDv5): an intent under one would keep a controller from ever storing it.
  refuseReservedEventId(event.event_id)
  if (event.tenant_id !== target.tenant) throw new TenantMismatch(target.tenant, event.tenant_id)
  if (event.stream.category !== target.category || event.stream.id !== target.id) {
    throw new StreamMismatch(formatStream(target), formatStream({ tenant: event.tenant_id, ...event.stream }))
  }
  // Measured by the validation, unless its limit is Infinity (then it measured nothing).
  const stored = dataBytes >= 0 ? dataBytes : storedDataBytes(event.data)
  if (stored > payload.byteLength) ctx.chargeStoredBytes?.(stored - payload.byteLength)
  const result = await inEventSpan(
    'eventplane append',
    SpanKind.SERVER,
    event,
    eventParentContext(event, traceparent),
    async () => {
      if (event.causation_id !== null)
        await checkLineage(ctx.store, target.tenant, event.causation_id, event.correlation_id)
      return ctx.store.append(target, [event], { expectedVersion: request.expectedVersion ?? 'any' })
    },
  )
  // A batch of one: append answers each event of its batch, in order.
  const recorded = result.events[0]!
  return {
    event_id: recorded.eventId,
    correlation_id: event.correlation_id,
    stream_version: recorded.streamVersion,
    position: recorded.position.toString(),
  }
}

/** The reply for an error: a typed error keeps its code and first message line; anything else is `bus.internal`. */
export function errorReply(e: unknown): { error: WireError } {
  if (e instanceof EventplaneError) {
    const wire = e.toJSON()
    return { error: { ...wire, message: wire.message.split('\n')[0]! } }
  }
  return { error: { code: 'bus.internal', message: 'the gateway failed to handle the request' } }
}
