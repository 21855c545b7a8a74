import { setTimeout as sleep } from 'node:timers/promises'
import {
  type SchemaRegistry,
  UNAVAILABLE_CODES,
  isEventplaneError,
  isUnavailableError,
  validateName,
} from '@eventplane/core'
import type { PgEventStore } from '@eventplane/store-pg'
import {
  type EventplaneMetrics,
  type Logger,
  errorFields,
  eventParentContext,
  silentLogger,
  startEventSpan,
  unlessAborted,
} from '@eventplane/bus-nats'
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api'
import { type Deferred, deferred } from '../deferred.ts'
import {
  type LiveDelivery,
  type LiveSource,
  type LiveSubscription,
  ackFailureFields,
  ackUnlessStopped,
  liveSourceClosed,
  runnerStop,
} from '../live-source.ts'
import { createContext } from './context.ts'
import { DependencyWait, type DependencyWaitOptions } from './dependency-wait.ts'
import { KeyedQueue } from './keyed-queue.ts'
import { ParkChecks, appendPark } from './parked.ts'
import { RECONCILES_CATEGORY, beginReconcile } from './reconciles.ts'
import type { Controller } from './types.ts'

export { RECONCILE_FAILED } from './parked.ts'

/** What recording a reconcile gives when the record's id is held by another event (see `#attempts`). */
const RECORD_ID_TAKEN = -1

/**
 * Default transient test: the typed "try again" codes, a passing failure of a dependency (core's
 * `UNAVAILABLE_CODES`, which the runner waits out without counting) or a lost race on a stream.
 */
export const isTransientError = (e: unknown): boolean =>
  isEventplaneError(e) && (UNAVAILABLE_CODES.has(e.code) || e.code === 'store.wrong_expected_version')

export interface ControllerRunnerOptions {
  controller: Controller
  /** A store on a pool connected as `eventplane_fact_writer` (appends facts, reads streams). */
  store: PgEventStore
  /** Where triggering events come from (see `jetStreamSource` with `coveringFilter`). */
  live: LiveSource
  /** Streams reconciled at once (default 8); one stream's events always one after another. */
  concurrency?: number
  /**
   * Tries per delivery before the event is parked (default 5). A try that failed because PostgreSQL or NATS
   * is unavailable (core `isUnavailableError`) is not counted: it is retried until the dependency answers.
   */
  maxAttempts?: number
  /**
   * Reconciles of one event begun on redeliveries that never finished (the worker died or was stopped
   * during them) before the next delivery parks it (default 10): it keeps killing workers. Counted from the
   * `reconcile_started` events the runner recorded here (see `beginReconcile`), not from the bus's delivery
   * count, which also rises with every restart during an outage.
   */
  maxDeliveries?: number
  /** First retry delay (default 100 ms), doubled up to `maxRetryDelayMs` (default 5 s). */
  retryDelayMs?: number
  maxRetryDelayMs?: number
  /**
   * How often held deliveries (running, retrying or queued behind their stream) get their ack wait extended;
   * default a third of the consumer's ack wait (`LiveSource.ackWaitMs`), else 10 s.
   */
  heartbeatMs?: number
  /** Errors retried and counted toward `maxAttempts` (default {@link isTransientError}); others park at once. */
  isTransient?: (e: unknown) => boolean
  /** Validates emitted facts' data when given. */
  registry?: SchemaRegistry
  /** Counts reconciled, retried and parked deliveries and, at each scrape, the consumer's lag (see LiveSource.pending). */
  metrics?: EventplaneMetrics
  logger?: Logger
}

/**
 * Runs one controller: takes deliveries from the bus, reconciles each in
 * stream order (different streams concurrently, bounded), retries transient
 * errors with backoff, and acknowledges a delivery only after its reconcile
 * finished. A poison event (non-transient error, or too many attempts) gets a
 * `reconcile_failed` internal event `{ controller, reason_code, attempts }` on
 * its stream and is terminated, so it never blocks other streams. An event
 * whose `reconcile_failed` is stored already (parked before a restore, or its
 * terminate lost) is acknowledged without a reconcile; only deliveries that
 * may find one look (see `ParkChecks`).
 *
 * A passing failure of PostgreSQL or NATS is not the event's fault: the
 * delivery is held in the runner and retried (backoff up to
 * `maxRetryDelayMs`) until the dependency answers, without counting toward
 * `maxAttempts`, and every held delivery's ack wait is extended meanwhile, so
 * it is not redelivered to another worker. Holding keeps the stream's order:
 * its later events wait behind it. `maxDeliveries` counts only reconciles
 * that began and never finished, recorded in PostgreSQL before a redelivery
 * is reconciled, so restarts during an outage (each a redelivery) count
 * nothing: a redelivery that cannot record its reconcile waits too.
 */
export class ControllerRunner {
  readonly name: string
  /**
   * Settles when stopped: resolves after `stop()`, rejects if the consumer could not be set up or the live
   * source was closed for good (`bus.unavailable`, see `LiveSource.isClosed`).
   */
  readonly closed: Promise<void>
  readonly #o: ControllerRunnerOptions
  readonly #log: Logger
  readonly #abort = runnerStop()
  readonly #queue: KeyedQueue
  /** Deliveries held by this runner (queued, running or waiting), by event id. */
  readonly #inFlight = new Map<string, LiveDelivery>()
  readonly #ready: Deferred<void> = deferred()
  readonly #closed: Deferred<void> = deferred()
  readonly #parks: ParkChecks
  readonly #waits: DependencyWaitOptions
  #started = false

  constructor(options: ControllerRunnerOptions) {
    this.name = validateName('controller', options.controller.name)
    this.#o = options
    this.#log = options.logger ?? silentLogger
    this.#queue = new KeyedQueue(options.concurrency ?? 8)
    this.#parks = new ParkChecks(options.store, this.name)
    const { retryDelayMs = 100, maxRetryDelayMs = 5000 } = options
    this.#waits = {
      controller: this.name,
      signal: this.#abort.signal,
      log: this.#log,
      metrics: options.metrics,
      retryDelayMs,
      maxRetryDelayMs,
    }
    this.closed = this.#closed.promise
    this.closed.catch(() => {})
    this.#ready.promise.catch(() => {})
    const metrics = options.metrics
    const pending = options.live.pending?.bind(options.live)
    const removeCollector =
      metrics && pending
        ? metrics.addCollector(`controller:${this.name}`, async () => {
            metrics.runtime.controllerLag.set({ controller: this.name }, await pending())
          })
        : undefined
    if (removeCollector) this.closed.finally(removeCollector).catch(() => {})
  }

  /** Ensures the consumer and opens the subscription; resolves once deliveries flow. */
  start(): Promise<void> {
    if (!this.#started) {
      this.#started = true
      this.#run().then(this.#closed.resolve, (e: unknown) => {
        this.#ready.reject(e)
        this.#closed.reject(e)
      })
    }
    return this.#ready.promise
  }

  /**
   * Stops taking deliveries and aborts reconciles in progress; what was not
   * acknowledged is redelivered to the next runner. Resolves when stopped.
   */
  async stop(): Promise<void> {
    this.#abort.abort()
    if (!this.#started) return
    await this.closed.catch(() => {})
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal
    try {
      // Given up at stop(): a consumer check held by a stalling server must not hold the stop (a SIGTERM).
      await this.#prepareFirst(signal)
    } catch (e) {
      if (e === signal.reason && signal.aborted)
        this.#log.info(
          { controller: this.name, event: 'controller.prepare_abandoned' },
          'stopped while its consumer was checked: check given up',
        )
      if (signal.aborted) return
      throw e
    }
    const heartbeat = setInterval(() => {
      for (const d of this.#inFlight.values()) d.working?.()
    }, this.#heartbeatMs())
    heartbeat.unref()
    try {
      await this.#consume(signal)
    } finally {
      clearInterval(heartbeat)
    }
    await this.#queue.idle()
  }

  /**
   * The first consumer check, tried again while NATS or the stream is unavailable (a runner started before the
   * relay made the stream: processes start in any order, docs/deploying.md); anything else, or a connection
   * closed for good, ends the start.
   */
  async #prepareFirst(signal: AbortSignal): Promise<void> {
    for (let failures = 0; ; failures++) {
      try {
        return await unlessAborted(this.#o.live.prepare(), signal)
      } catch (e) {
        if (signal.aborted || !isUnavailableError(e) || this.#o.live.isClosed?.()) throw e
        const delay = Math.min(250 * 2 ** failures, 10_000)
        this.#log.warn(
          { controller: this.name, ...errorFields(e), retry_in_ms: delay },
          'controller waiting for its consumer',
        )
        await sleep(delay, undefined, { signal }).catch(() => {})
      }
    }
  }

  #heartbeatMs(): number {
    if (this.#o.heartbeatMs !== undefined) return this.#o.heartbeatMs
    const ackWait = this.#o.live.ackWaitMs?.()
    return ackWait === undefined ? 10_000 : Math.max(50, Math.floor(ackWait / 3))
  }

  async #consume(signal: AbortSignal): Promise<void> {
    let failures = 0
    while (!signal.aborted) {
      let sub: LiveSubscription | undefined
      try {
        // The consumer may be gone after a failure (deleted, or with its stream): ensure it again.
        if (failures > 0) await unlessAborted(this.#o.live.prepare(), signal)
        sub = await this.#o.live.open(signal)
        this.#parks.opened()
        this.#ready.resolve()
        for await (const d of sub) {
          failures = 0
          this.#dispatch(d)
        }
      } catch (e) {
        if (signal.aborted) break
        // Closed for good (e.g. its user revoked): reopening cannot help; end, for the owner to say why.
        if (this.#o.live.isClosed?.()) throw liveSourceClosed(e)
        this.#log.warn({ controller: this.name, ...errorFields(e) }, 'controller subscription failed, reopening')
      } finally {
        await sub?.stop()
      }
      if (signal.aborted) break
      await sleep(Math.min(250 * 2 ** failures++, 10_000), undefined, { signal }).catch(() => {})
    }
  }

  #dispatch(d: LiveDelivery): void {
    const e = d.event
    const c = this.#o.controller
    if (
      e.stream.category === RECONCILES_CATEGORY ||
      !(c.kinds ?? ['intent']).includes(e.kind) ||
      !c.categories.includes(e.stream.category) ||
      (c.types && !c.types.includes(e.type))
    ) {
      void this.#ack(d)
      return
    }
    // A redelivery of an event still being worked on (its ack wait lapsed while NATS was out of reach):
    // the first delivery settles it (JetStream takes an ack by stream sequence).
    if (this.#inFlight.has(e.event_id)) {
      this.#log.debug(
        { controller: this.name, event_id: e.event_id, delivery_count: d.deliveryCount },
        'redelivery of a held event ignored',
      )
      return
    }
    this.#inFlight.set(e.event_id, d)
    const key = `${e.tenant_id}/${e.stream.category}/${e.stream.id}`
    this.#queue.push(key, () => this.#handle(d).finally(() => this.#inFlight.delete(e.event_id)))
  }

  /** Reconciles one delivery in its own span, under the relay's `traceparent` (the controller's hop of the trace). */
  async #handle(d: LiveDelivery): Promise<void> {
    const e = d.event
    const span = startEventSpan('eventplane reconcile', SpanKind.CONSUMER, e, eventParentContext(e, d.traceparent))
    span.setAttribute('eventplane.controller', this.name)
    try {
      await context.with(trace.setSpan(context.active(), span), () => this.#attempts(d, span))
    } finally {
      span.end()
    }
  }

  async #attempts(d: LiveDelivery, span: { setStatus(s: { code: SpanStatusCode; message?: string }): unknown }) {
    const { maxAttempts = 5, maxDeliveries = 10, retryDelayMs = 100, maxRetryDelayMs = 5000 } = this.#o
    const signal = this.#abort.signal
    const e = d.event
    const ids = { controller: this.name, event_id: e.event_id, type: e.type, stream_version: e.stream_version }
    const waiting = new DependencyWait(this.#waits, ids)
    try {
      // Parked already (before a restore, or its terminate lost): settled, not reconciled again. Read only
      // where a park may be stored (ParkChecks): the normal path reads nothing.
      const parked = await waiting.beforeReconcile(d, { doing: 'reading its park', do: 'read its park' }, () =>
        this.#parks.stored(d),
      )
      if (parked === undefined) return
      waiting.done()
      if (parked.value) {
        await this.#ack(d)
        this.#log.info(
          { ...ids, reason_code: parked.value.data.reason_code, event: 'intent.already_parked' },
          'event already parked (its reconcile_failed is stored): acknowledged, not reconciled again',
        )
        return
      }
      // A redelivery: parked if reconciles begun on earlier redeliveries never finished `maxDeliveries`
      // times (it keeps killing workers). NATS's delivery count is not used: it also counts the
      // redeliveries after restarts during an outage, which never ran the reconcile.
      if (d.deliveryCount > 1) {
        const begun = await waiting.beforeReconcile(
          d,
          { doing: 'recording a reconcile', do: 'record a reconcile' },
          // The record's id held by another event: no retry can store it (the log is append-only), so the event
          // is parked (`RECORD_ID_TAKEN`) rather than nak'ed for ever, holding a pending ack of a shared consumer.
          () =>
            beginReconcile(this.#o.store, this.name, e, maxDeliveries).catch((err: unknown) => {
              if (isEventplaneError(err, 'store.idempotency_conflict')) return RECORD_ID_TAKEN
              throw err
            }),
        )
        if (begun === undefined) return
        waiting.done()
        if (begun.value === RECORD_ID_TAKEN) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: 'store.idempotency_conflict' })
          return await this.#park(d, 'store.idempotency_conflict', 0)
        }
        if (begun.value >= maxDeliveries) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: 'runtime.reconcile_failed' })
          return await this.#park(d, 'runtime.reconcile_failed', begun.value)
        }
      }
      // `tries` counts every call (the context's `attempt`), `attempt` only those that may park the event.
      for (let tries = 1, attempt = 1; ; tries++) {
        if (signal.aborted) return
        try {
          await this.#o.controller.reconcile(
            e,
            createContext(e, tries, signal, {
              controller: this.name,
              store: this.#o.store,
              registry: this.#o.registry,
              log: this.#log,
            }),
          )
          if (signal.aborted) return
          waiting.done()
          await this.#ack(d)
          this.#o.metrics?.runtime.controllerReconciled.inc({ controller: this.name })
          this.#log.debug({ ...ids, attempt, tries }, 'reconciled')
          return
        } catch (err) {
          if (signal.aborted) return
          if (isUnavailableError(err)) {
            await waiting.retry(d, err, 'reconcile waits for an unavailable dependency, retrying (not counted)')
            continue
          }
          waiting.done()
          const code = isEventplaneError(err) ? err.code : 'runtime.handler_failed'
          if (!this.#isTransient(err) || attempt >= maxAttempts) {
            span.setStatus({ code: SpanStatusCode.ERROR, message: code })
            return this.#park(d, code, attempt)
          }
          const delay = Math.min(retryDelayMs * 2 ** (attempt - 1), maxRetryDelayMs)
          this.#o.metrics?.runtime.controllerRetries.inc({ controller: this.name })
          this.#log.warn({ ...ids, attempt, retry_in_ms: delay, ...errorFields(err) }, 'reconcile failed, retrying')
          d.working?.()
          attempt++
          await sleep(delay, undefined, { signal }).catch(() => {})
        }
      }
    } finally {
      waiting.done()
    }
  }

  /**
   * Appends `reconcile_failed` (`appendPark`) and terminates the delivery; one already stored with other
   * data (parked meanwhile by another worker) is kept and the delivery terminated all the same. While
   * PostgreSQL is unavailable the delivery is held and the append retried; any other failure asks for
   * redelivery.
   */
  async #park(d: LiveDelivery, reasonCode: string, attempts: number): Promise<void> {
    const e = d.event
    const ids = { controller: this.name, event_id: e.event_id, type: e.type }
    this.#log.error({ ...ids, reason_code: reasonCode, attempts }, 'event parked')
    const waiting = new DependencyWait(this.#waits, ids)
    try {
      while (!this.#abort.signal.aborted) {
        try {
          const how = await appendPark(this.#o.store, this.name, e, reasonCode, attempts)
          d.term()
          this.#o.metrics?.runtime.controllerParked.inc({ controller: this.name })
          if (how === 'kept')
            this.#log.warn(
              { ...ids, reason_code: reasonCode, event: 'park.kept_stored' },
              'event parked already with another reconcile_failed: the stored one is kept',
            )
          return
        } catch (err) {
          if (this.#abort.signal.aborted) return
          if (isUnavailableError(err)) {
            await waiting.retry(d, err, 'parking waits for an unavailable dependency, retrying')
            continue
          }
          if (isEventplaneError(err, 'store.idempotency_conflict')) {
            // The park's id is held by an event that is not this park (appendPark keeps a park of ours): the log
            // is append-only, so no retry can ever store it. A nak would hold one of the consumer's pending acks
            // for ever, and the consumer is shared by every tenant: terminated unparked.
            d.term()
            this.#o.metrics?.runtime.controllerParked.inc({ controller: this.name })
            this.#log.error(
              { ...ids, reason_code: reasonCode, event: 'park.id_taken' },
              'event terminated without a reconcile_failed: its id is held by another event',
            )
            return
          }
          this.#log.error({ ...ids, ...errorFields(err) }, 'could not park event, will retry')
          d.nak(this.#o.maxRetryDelayMs ?? 5000)
          return
        }
      }
    } finally {
      waiting.done()
    }
  }

  /**
   * A lost ack only means a redelivery, which reconciles idempotently. The bus has already sent it again
   * (bus-nats `SubscribeOptions.ackRetry`): what fails here is final for this delivery.
   */
  async #ack(d: LiveDelivery): Promise<void> {
    try {
      // Stopping, an ack the server does not answer is left (redelivered later) instead of holding the stop.
      if ((await ackUnlessStopped(Promise.resolve(d.ack()), this.#abort.signal)) === 'abandoned')
        this.#log.warn(
          { controller: this.name, event_id: d.event.event_id, event: 'ack.abandoned' },
          'stopping: ack not confirmed in time; the event will be redelivered and reconciled again',
        )
    } catch (err) {
      const e = d.event
      this.#log.warn(
        {
          controller: this.name,
          tenant_id: e.tenant_id,
          event_id: e.event_id,
          type: e.type,
          stream_version: e.stream_version,
          delivery_count: d.deliveryCount,
          ...ackFailureFields(err),
        },
        'ack failed; the event will be redelivered after the ack wait and reconciled again',
      )
    }
  }

  #isTransient(e: unknown): boolean {
    return (this.#o.isTransient ?? isTransientError)(e)
  }
}
