import {
  type EventEnvelope,
  type SchemaRegistry,
  DEFAULT_MAX_DATA_BYTES,
  EventplaneError,
  Forbidden,
  Unavailable,
  errorFromWire,
} from '@eventplane/core'
import type { ExpectedVersion, PgEventStore } from '@eventplane/store-pg'
import {
  type Msg,
  type NatsConnection,
  PermissionViolationError,
  RequestError,
  TimeoutError,
  headers,
} from '@nats-io/transport-node'
import {
  DEFAULT_MAX_REQUEST_BYTES,
  PRINCIPAL_HEADER,
  type SubmitReply,
  type SubmitResult,
  defaultPrincipal,
  errorReply,
  submit,
} from './gateway-request.ts'
import { type Logger, errorFields, silentLogger } from './logger.ts'
import { SUBMIT_SUBJECTS, type SubmitTarget, submitSubject } from './subjects.ts'

export interface GatewayOptions {
  nc: NatsConnection
  /** A PgEventStore on an eventplane_intent_writer pool: the database refuses anything but intents. */
  store: PgEventStore
  /** When given, every intent's `type@schema_version` must be registered and its data must match. */
  registry?: SchemaRegistry
  /** Queue group: several gateways share the load. Default 'eventplane-gateway'. */
  queue?: string
  /** Who is calling, stamped as `caused_by`. Default {@link defaultPrincipal} (`nats:<tenant>[/<claimed>]`). */
  principal?: (msg: Msg, target: SubmitTarget) => string
  /** Largest request body accepted. Default 80 KiB (64 KiB of data plus envelope). */
  maxPayloadBytes?: number
  /** Largest event data accepted. Default 64 KiB. */
  maxDataBytes?: number
  logger?: Logger
}

export interface Gateway {
  /** Stops taking requests, answers the ones already received, then resolves. */
  stop(): Promise<void>
  /** Resolves once the gateway has stopped. */
  closed: Promise<void>
  /** Requests dropped unanswered and unprocessed so far: no reply subject in the requester's space. */
  readonly dropped: number
}

/**
 * The reply subject of a request that came through a tenant account's import:
 * nats-server maps the requester's own reply subject to `_R_.<id>.<id>` in the
 * serving account and routes the answer back into the requester's account.
 */
export const IMPORTED_REPLY_PREFIX = '_R_.'

/**
 * True when the gateway may answer `reply` for a request on `subject`: a
 * reply mapped back into the requesting tenant's account (`_R_.`), or the
 * subject's tenant's own inbox (`_INBOX_<tenant>.`, for clients in the log
 * account or on a server without accounts). Anything else (no reply, a log
 * subject, a JetStream API subject, another tenant's inbox) could make the
 * gateway write where the requester may not; such a request is not served.
 */
export function replyInTenantSpace(subject: string, reply: string | undefined): boolean {
  if (reply === undefined || reply === '') return false
  if (reply.startsWith(IMPORTED_REPLY_PREFIX)) return true
  // The raw token, unvalidated: a malformed subject still gets its typed error, and whatever the
  // token, the reply stays under `_INBOX_`, where no stream and no service listens.
  const tenant = subject.split('.')[2]
  return tenant !== undefined && tenant !== '' && reply.startsWith(`_INBOX_${tenant}.`)
}

const encoder = new TextEncoder()

/**
 * Serves intent submissions: NATS request/reply on
 * `eventplane-api.submit.<tenant>.<category>.<id>` in a queue group (DESIGN §4).
 * A request whose reply subject is not in the requesting tenant's space (see
 * {@link replyInTenantSpace}) is dropped unprocessed, counted and logged.
 * Each request is validated (size, subject names, JSON, envelope and schema,
 * kind, tenant and stream against the subject), stamped with `caused_by` and
 * appended; the reply is `{ ok: SubmitResult }` or `{ error: { code, message } }`.
 * A retry with the same event id gets the same result and writes nothing new.
 * Resolves once the server has registered the subscription.
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const logger = options.logger ?? silentLogger
  const pending = new Set<Promise<void>>()
  const ctx = {
    store: options.store,
    registry: options.registry,
    maxPayloadBytes: options.maxPayloadBytes ?? DEFAULT_MAX_REQUEST_BYTES,
    maxDataBytes: options.maxDataBytes ?? DEFAULT_MAX_DATA_BYTES,
  }

  let dropped = 0
  const handle = async (msg: Msg): Promise<void> => {
    if (!replyInTenantSpace(msg.subject, msg.reply)) {
      dropped += 1
      logger.warn(
        { code: 'bus.forbidden', subject: msg.subject, reply: msg.reply?.slice(0, 200) ?? null },
        'request dropped: reply subject outside the tenant space',
      )
      return
    }
    let reply: SubmitReply
    try {
      const claimed = msg.headers?.get(PRINCIPAL_HEADER) || undefined
      const principal = options.principal ? (target: SubmitTarget) => options.principal!(msg, target) : defaultPrincipal
      const ok = await submit(msg.subject, msg.data, claimed, { ...ctx, principal })
      reply = { ok }
      logger.debug({ subject: msg.subject, event_id: ok.event_id, position: ok.position }, 'intent recorded')
    } catch (e) {
      reply = errorReply(e)
      const level = reply.error.code === 'bus.internal' || reply.error.code === 'store.unavailable' ? 'error' : 'debug'
      logger[level]({ subject: msg.subject, ...errorFields(e) }, 'intent refused')
    }
    try {
      msg.respond(encoder.encode(JSON.stringify(reply)))
    } catch (e) {
      // The client may retry with the same event id; the store replays the result.
      logger.warn({ subject: msg.subject, ...errorFields(e) }, 'reply could not be sent')
    }
  }

  const sub = options.nc.subscribe(SUBMIT_SUBJECTS, {
    queue: options.queue ?? 'eventplane-gateway',
    callback: (err, msg) => {
      if (err) {
        logger.error(errorFields(err), 'gateway subscription failed')
        return
      }
      const p = handle(msg).finally(() => pending.delete(p))
      pending.add(p)
    },
  })
  await options.nc.flush()
  logger.info({ subject: SUBMIT_SUBJECTS, queue: options.queue ?? 'eventplane-gateway' }, 'gateway serving')

  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      if (!sub.isClosed()) await sub.drain().catch(() => {})
      await Promise.allSettled([...pending])
    })())
  const closed = sub.closed.then(() => stop())
  return Object.defineProperty({ stop, closed }, 'dropped', { get: () => dropped, enumerable: true }) as Gateway
}

export interface SubmitIntentOptions {
  expectedVersion?: ExpectedVersion
  /** Default 5000 ms. */
  timeoutMs?: number
  /** Sent as the `Eventplane-Principal` header: who the client acts for, within its tenant. */
  principal?: string
}

/**
 * Submits one intent through the gateway and returns what was recorded.
 * Throws the gateway's typed error (same `code`), `bus.unavailable` when no
 * gateway answers, `bus.timeout` when the reply is late (the intent may have
 * been recorded: retry with the same event id), `bus.forbidden` when this
 * connection may not submit for the event's tenant.
 */
export async function submitIntent(
  nc: NatsConnection,
  event: EventEnvelope,
  options: SubmitIntentOptions = {},
): Promise<SubmitResult> {
  const subject = submitSubject(event.tenant_id, event.stream.category, event.stream.id)
  const body = { event, ...(options.expectedVersion === undefined ? {} : { expectedVersion: options.expectedVersion }) }
  const h = options.principal === undefined ? undefined : headers()
  h?.set(PRINCIPAL_HEADER, options.principal!)
  let msg: Msg
  try {
    msg = await nc.request(subject, encoder.encode(JSON.stringify(body)), {
      timeout: options.timeoutMs ?? 5000,
      ...(h ? { headers: h } : {}),
    })
  } catch (e) {
    throw requestError(subject, e)
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

function requestError(subject: string, e: unknown): EventplaneError {
  const cause = e instanceof RequestError && e.cause !== undefined ? e.cause : e
  if (e instanceof RequestError && e.isNoResponders()) {
    return new Unavailable('bus.unavailable', `no gateway is serving ${subject}`, { cause: e })
  }
  if (cause instanceof TimeoutError || e instanceof TimeoutError) {
    return new EventplaneError(
      'bus.timeout',
      `no reply from the gateway for ${subject} in time; retry with the same event id`,
      { cause: e },
    )
  }
  if (cause instanceof PermissionViolationError || e instanceof PermissionViolationError) {
    return new Forbidden('bus.forbidden', `not permitted to submit to ${subject}`, { cause: e })
  }
  return new Unavailable(
    'bus.unavailable',
    `request to ${subject} failed: ${e instanceof Error ? e.message : String(e)}`,
    { cause: e },
  )
}
