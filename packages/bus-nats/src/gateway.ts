import { type SchemaRegistry, DEFAULT_MAX_DATA_BYTES, PayloadTooLarge } from '@eventplane/core'
import type { PgEventStore } from '@eventplane/store-pg'
import type { Msg, NatsConnection } from '@nats-io/transport-node'
import { FairAdmission } from './gateway-admission.ts'
import { DEFAULT_GATEWAY_CONCURRENCY, type GatewayLimits, resolveLimits } from './gateway-limits.ts'
import {
  DEFAULT_MAX_REQUEST_BYTES,
  PRINCIPAL_HEADER,
  type SubmitReply,
  defaultPrincipal,
  errorReply,
  submit,
} from './gateway-request.ts'
import { RefusalDesk } from './gateway-refusals.ts'
import { StopWaits, serverWait } from './server-wait.ts'
import { type Logger, errorFields, silentLogger } from './logger.ts'
import type { EventplaneMetrics } from './ops/metrics.ts'
import { TRACEPARENT_HEADER } from './ops/trace-context.ts'
import { SUBMIT_SUBJECTS, type SubmitTarget } from './subjects.ts'

/** The application name of a gateway process's PostgreSQL sessions (pg_stat_activity). */
export const GATEWAY_APPLICATION_NAME = 'eventplane-gateway'

export interface GatewayOptions {
  nc: NatsConnection
  /** A PgEventStore on an eventplane_intent_writer pool: the database refuses anything but intents. */
  store: PgEventStore
  /** When given, every intent's `type@schema_version` must be registered and its data must match. */
  registry?: SchemaRegistry
  /** Queue group: several gateways share the load. Default 'eventplane-gateway'. */
  queue?: string
  /** Who is calling, stamped as `caused_by`. Default {@link defaultPrincipal} (`nats:<tenant>[/<claimed>]`). */
  principal?: (request: GatewayRequest, target: SubmitTarget) => string
  /** Largest request body accepted. Default 80 KiB (64 KiB of data plus envelope). */
  maxPayloadBytes?: number
  /** Largest event data accepted. Default 64 KiB. */
  maxDataBytes?: number
  /**
   * Per-tenant fairness: rate limits, bounds on the requests and bytes held
   * per tenant and in total, and how many run at once (see {@link GatewayLimits};
   * every tenant is limited by default).
   */
  limits?: GatewayLimits
  /** Counts requests by tenant (capped, see EventplaneMetrics.tenant) and outcome, their latency, refusals and drops. */
  metrics?: EventplaneMetrics
  logger?: Logger
}

/** What the gateway keeps of a request it admitted: its body is copied, the socket buffer released. */
export interface GatewayRequest {
  subject: string
  reply: string
  data: Uint8Array
  /** The `Eventplane-Principal` header, if any: the client's own claim. */
  claimed: string | undefined
  /** The W3C `traceparent` header, if any: the append's span hangs under it. */
  traceparent?: string | undefined
}

export interface Gateway {
  /**
   * Stops taking requests, answers the ones already admitted, then resolves. Its wait for the subscription's
   * drain is one of `waits` (a process's stop, see StopWaits), else on its own for SERVER_WAIT_MS.
   */
  stop(waits?: StopWaits): Promise<void>
  /** Resolves once the gateway has stopped. */
  closed: Promise<void>
  /** Requests dropped unanswered and unprocessed so far: no reply subject in the requester's space. */
  readonly dropped: number
  /** Requests refused at arrival with `bus.rate_limited` so far. */
  readonly refused: number
  /** Requests held now (waiting or being processed), their bytes, and the most bytes ever held at once. */
  readonly load: { requests: number; bytes: number; peakBytes: number }
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
/** Dropped requests logged one by one per window; the rest are counted in one line. */
const DROPS_LOGGED = 100
const DROP_LOG_WINDOW_MS = 10_000

/**
 * Serves intent submissions: NATS request/reply on
 * `eventplane-api.submit.<tenant>.<category>.<id>` in a queue group (DESIGN §4).
 * On arrival, before the body is parsed: a request whose reply subject is not
 * in the requesting tenant's space (see {@link replyInTenantSpace}) is dropped,
 * counted and logged; one over the size limit is refused; one whose tenant is
 * over its rate or would hold too many requests or bytes, or that finds the
 * gateway full, is refused with `bus.rate_limited` and a retry-after
 * ({@link FairAdmission}), answered after a short hold that slows down
 * clients resending at once ({@link RefusalDesk}). Admitted requests wait in
 * their tenant's queue and run in turn across tenants. Each is validated (subject names, JSON,
 * envelope and schema, kind, tenant and stream against the subject, lineage),
 * stamped with `caused_by` and appended; the reply is `{ ok: SubmitResult }`
 * or `{ error: { code, message } }`. A retry with the same event id gets the
 * same result and writes nothing new. Resolves once the server has
 * registered the subscription.
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const logger = options.logger ?? silentLogger
  const nc = options.nc
  // One store connection per request run at once: by default no more runs than the pool has connections,
  // or the surplus would queue inside postgres.js, first come first served, past the tenants' turns.
  const poolSize = options.store.sql.options?.max
  const concurrency = Math.min(DEFAULT_GATEWAY_CONCURRENCY, poolSize > 0 ? poolSize : DEFAULT_GATEWAY_CONCURRENCY)
  const limits = resolveLimits({ concurrency, ...options.limits })
  const admission = new FairAdmission(limits)
  const ctx = {
    store: options.store,
    registry: options.registry,
    maxPayloadBytes: options.maxPayloadBytes ?? DEFAULT_MAX_REQUEST_BYTES,
    maxDataBytes: options.maxDataBytes ?? DEFAULT_MAX_DATA_BYTES,
  }

  const answer = (subject: string, reply: string, body: SubmitReply): void => {
    try {
      nc.publish(reply, encoder.encode(JSON.stringify(body)))
    } catch (e) {
      // The client may retry with the same event id; the store replays the result.
      logger.warn({ subject, ...errorFields(e) }, 'reply could not be sent')
    }
  }

  const metrics = options.metrics
  const count = (tenant: string, outcome: string): void => {
    metrics?.gateway.requests.inc({ tenant: metrics.tenant(tenant), outcome })
  }

  const handle = async (request: GatewayRequest, tenant: string, arrived: number): Promise<void> => {
    let reply: SubmitReply
    try {
      const principal = options.principal
        ? (target: SubmitTarget) => options.principal!(request, target)
        : defaultPrincipal
      const ok = await submit(
        request.subject,
        request.data,
        request.claimed,
        { ...ctx, principal, chargeStoredBytes: (bytes) => admission.charge(tenant, bytes) },
        request.traceparent,
      )
      reply = { ok }
      logger.debug({ subject: request.subject, event_id: ok.event_id, position: ok.position }, 'intent recorded')
    } catch (e) {
      reply = errorReply(e)
      const level = reply.error.code === 'bus.internal' || reply.error.code === 'store.unavailable' ? 'error' : 'debug'
      logger[level]({ subject: request.subject, ...errorFields(e) }, 'intent refused')
    }
    answer(request.subject, request.reply, reply)
    if (metrics) {
      count(tenant, 'ok' in reply ? 'ok' : reply.error.code)
      metrics.gateway.duration.observe({ tenant: metrics.tenant(tenant) }, (performance.now() - arrived) / 1000)
    }
  }

  let dropped = 0
  const refusals = new RefusalDesk({
    answer,
    logger,
    holdMs: limits.refusalHoldMs,
    maxHeld: limits.maxHeldRefusals,
  })

  // A tenant can publish without a reply as fast as it likes, costing the gateway nothing but this
  // log line: at most DROPS_LOGGED lines per window, then one line with how many more there were.
  let dropWindow = { start: performance.now(), logged: 0, unlogged: 0 }
  const logDrop = (subject: string, reply: string | undefined): void => {
    const now = performance.now()
    if (now - dropWindow.start >= DROP_LOG_WINDOW_MS) {
      if (dropWindow.unlogged > 0)
        logger.warn({ code: 'bus.forbidden', dropped: dropWindow.unlogged }, 'more requests dropped than logged')
      dropWindow = { start: now, logged: 0, unlogged: 0 }
    }
    if (dropWindow.logged >= DROPS_LOGGED) {
      dropWindow.unlogged += 1
      return
    }
    dropWindow.logged += 1
    logger.warn(
      { code: 'bus.forbidden', subject, reply: reply?.slice(0, 200) ?? null },
      'request dropped: reply subject outside the tenant space',
    )
  }

  const arrive = (msg: Msg): void => {
    const reply = msg.reply
    const tenant = msg.subject.split('.')[2] ?? ''
    if (reply === undefined || !replyInTenantSpace(msg.subject, reply)) {
      dropped += 1
      metrics?.gateway.dropped.inc()
      count(tenant, 'dropped')
      logDrop(msg.subject, reply)
      return
    }
    const arrived = performance.now()
    const size = msg.data.byteLength
    if (size > ctx.maxPayloadBytes) {
      const tooLarge = new PayloadTooLarge(size, ctx.maxPayloadBytes, 'the request body')
      count(tenant, tooLarge.code)
      logger.debug({ subject: msg.subject, ...errorFields(tooLarge) }, 'intent refused')
      answer(msg.subject, reply, errorReply(tooLarge))
      return
    }
    const refusal = admission.offer(tenant, size, () => {
      // Copied: the body nats.js hands over may be a view of a whole socket read, which it would keep alive.
      const request: GatewayRequest = {
        subject: msg.subject,
        reply,
        data: msg.data.slice(),
        claimed: msg.headers?.get(PRINCIPAL_HEADER) || undefined,
        traceparent: msg.headers?.get(TRACEPARENT_HEADER) || undefined,
      }
      return () => handle(request, tenant, arrived)
    })
    if (refusal !== undefined) {
      refusals.refuse(tenant, msg.subject, reply, refusal)
      if (metrics) {
        metrics.gateway.rateLimited.inc({ tenant: metrics.tenant(tenant) })
        count(tenant, 'rate_limited')
      }
    }
  }

  const sub = nc.subscribe(SUBMIT_SUBJECTS, {
    queue: options.queue ?? 'eventplane-gateway',
    callback: (err, msg) => {
      if (err) {
        logger.error(errorFields(err), 'gateway subscription failed')
        return
      }
      arrive(msg)
    },
  })
  // Not for ever: a flush queued while a refused reconnect dials is never answered (see serverWait).
  await serverWait(nc, nc.flush())
  logger.info({ subject: SUBMIT_SUBJECTS, queue: options.queue ?? 'eventplane-gateway' }, 'gateway serving')

  const removeCollector = metrics?.addCollector('gateway', async () => {
    metrics.gateway.heldRequests.set(admission.load.requests)
    metrics.gateway.heldBytes.set(admission.load.bytes)
  })

  let stopping: Promise<void> | undefined
  const stop = (waits: StopWaits = new StopWaits()): Promise<void> =>
    (stopping ??= (async () => {
      // Closed by the server meanwhile (e.g. while reconnecting) or stalled, a drain is never answered.
      const drained = sub.isClosed() ? undefined : await waits.wait(nc, sub.drain())
      if (drained?.outcome === 'timed_out') {
        // Unanswered, it stays subscribed (a reconnect would subscribe it again): end it here.
        sub.unsubscribe()
        logger.warn(
          { waited_ms: drained.waitedMs, event: 'nats.drain_timeout' },
          'the gateway subscription did not drain: the server did not answer; stopped without it',
        )
      }
      refusals.close()
      await admission.idle()
      removeCollector?.()
    })())
  const closed = sub.closed.then(() => stop())
  return Object.defineProperties(
    { stop, closed },
    {
      dropped: { get: () => dropped, enumerable: true },
      refused: { get: () => refusals.count, enumerable: true },
      load: { get: () => admission.load, enumerable: true },
    },
  ) as Gateway
}
