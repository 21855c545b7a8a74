import { setTimeout as sleep } from 'node:timers/promises'
import { type SchemaRegistry, isEventplaneError, validateName } from '@eventplane/core'
import type { PgEventStore } from '@eventplane/store-pg'
import {
  type EventplaneMetrics,
  type Logger,
  errorFields,
  eventParentContext,
  silentLogger,
  startEventSpan,
} from '@eventplane/bus-nats'
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api'
import { type Deferred, deferred } from '../deferred.ts'
import type { LiveDelivery, LiveSource, LiveSubscription } from '../live-source.ts'
import { createContext, factoryFor } from './context.ts'
import { factId } from './fact-ids.ts'
import { KeyedQueue } from './keyed-queue.ts'
import type { Controller } from './types.ts'

/** The internal event that parks a poison event on its own stream. */
export const RECONCILE_FAILED = 'reconcile_failed'

const TRANSIENT = new Set(['store.unavailable', 'bus.unavailable', 'bus.timeout', 'store.wrong_expected_version'])

/** Default transient test: the typed "try again" codes. */
export const isTransientError = (e: unknown): boolean => isEventplaneError(e) && TRANSIENT.has(e.code)

export interface ControllerRunnerOptions {
  controller: Controller
  /** A store on a pool connected as `eventplane_fact_writer` (appends facts, reads streams). */
  store: PgEventStore
  /** Where triggering events come from (see `jetStreamSource` with `coveringFilter`). */
  live: LiveSource
  /** Streams reconciled at once (default 8); one stream's events always one after another. */
  concurrency?: number
  /** Tries per delivery before the event is parked (default 5). */
  maxAttempts?: number
  /** A delivery the bus has handed out more often than this is parked at once (default 10): it keeps killing workers. */
  maxDeliveries?: number
  /** First retry delay (default 100 ms), doubled up to `maxRetryDelayMs` (default 5 s). */
  retryDelayMs?: number
  maxRetryDelayMs?: number
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
 * its stream and is terminated, so it never blocks other streams.
 */
export class ControllerRunner {
  readonly name: string
  /** Settles when stopped: resolves after `stop()`, rejects if the consumer could not be set up. */
  readonly closed: Promise<void>
  readonly #o: ControllerRunnerOptions
  readonly #log: Logger
  readonly #abort = new AbortController()
  readonly #queue: KeyedQueue
  readonly #inFlight = new Set<string>()
  readonly #ready: Deferred<void> = deferred()
  readonly #closed: Deferred<void> = deferred()
  #started = false

  constructor(options: ControllerRunnerOptions) {
    this.name = validateName('controller', options.controller.name)
    this.#o = options
    this.#log = options.logger ?? silentLogger
    this.#queue = new KeyedQueue(options.concurrency ?? 8)
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
    await this.#o.live.prepare()
    let failures = 0
    while (!signal.aborted) {
      let sub: LiveSubscription | undefined
      try {
        // The consumer may be gone after a failure (deleted, or with its stream): ensure it again.
        if (failures > 0) await this.#o.live.prepare()
        sub = await this.#o.live.open(signal)
        this.#ready.resolve()
        for await (const d of sub) {
          failures = 0
          this.#dispatch(d)
        }
      } catch (e) {
        if (signal.aborted) break
        this.#log.warn({ controller: this.name, ...errorFields(e) }, 'controller subscription failed, reopening')
      } finally {
        await sub?.stop()
      }
      if (signal.aborted) break
      await sleep(Math.min(250 * 2 ** failures++, 10_000), undefined, { signal }).catch(() => {})
    }
    await this.#queue.idle()
  }

  #dispatch(d: LiveDelivery): void {
    const e = d.event
    const c = this.#o.controller
    if (
      !(c.kinds ?? ['intent']).includes(e.kind) ||
      !c.categories.includes(e.stream.category) ||
      (c.types && !c.types.includes(e.type))
    ) {
      void this.#ack(d)
      return
    }
    // A redelivery of an event still being worked on: the first delivery settles it.
    if (this.#inFlight.has(e.event_id)) return
    this.#inFlight.add(e.event_id)
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
    if (d.deliveryCount > maxDeliveries) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: 'runtime.reconcile_failed' })
      return this.#park(d, 'runtime.reconcile_failed', d.deliveryCount - 1)
    }
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) return
      try {
        await this.#o.controller.reconcile(
          e,
          createContext(e, attempt, signal, {
            controller: this.name,
            store: this.#o.store,
            registry: this.#o.registry,
            log: this.#log,
          }),
        )
        if (signal.aborted) return
        await this.#ack(d)
        this.#o.metrics?.runtime.controllerReconciled.inc({ controller: this.name })
        this.#log.debug({ ...ids, attempt }, 'reconciled')
        return
      } catch (err) {
        if (signal.aborted) return
        const code = isEventplaneError(err) ? err.code : 'runtime.handler_failed'
        if (!this.#isTransient(err) || attempt >= maxAttempts) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: code })
          return this.#park(d, code, attempt)
        }
        const delay = Math.min(retryDelayMs * 2 ** (attempt - 1), maxRetryDelayMs)
        this.#o.metrics?.runtime.controllerRetries.inc({ controller: this.name })
        this.#log.warn({ ...ids, attempt, retry_in_ms: delay, ...errorFields(err) }, 'reconcile failed, retrying')
        d.working?.()
        await sleep(delay, undefined, { signal }).catch(() => {})
      }
    }
  }

  /** Appends `reconcile_failed` (deterministic id) and terminates the delivery; if that append fails, asks for redelivery. */
  async #park(d: LiveDelivery, reasonCode: string, attempts: number): Promise<void> {
    const e = d.event
    this.#log.error(
      { controller: this.name, event_id: e.event_id, type: e.type, reason_code: reasonCode, attempts },
      'event parked',
    )
    try {
      const factory = factoryFor(e, this.name)
      const failed = factory.internal(
        e.stream,
        RECONCILE_FAILED,
        { controller: this.name, reason_code: reasonCode, attempts },
        {
          eventId: factId(this.name, e.event_id, RECONCILE_FAILED),
        },
      )
      await this.#o.store.append({ tenant: e.tenant_id, ...e.stream }, [failed])
      d.term()
      this.#o.metrics?.runtime.controllerParked.inc({ controller: this.name })
    } catch (err) {
      this.#log.error(
        { controller: this.name, event_id: e.event_id, ...errorFields(err) },
        'could not park event, will retry',
      )
      d.nak(this.#o.maxRetryDelayMs ?? 5000)
    }
  }

  /** A lost ack only means a redelivery, which reconciles idempotently. */
  async #ack(d: LiveDelivery): Promise<void> {
    try {
      await d.ack()
    } catch (err) {
      this.#log.warn(
        { controller: this.name, event_id: d.event.event_id, ...errorFields(err) },
        'ack failed; the event will be redelivered',
      )
    }
  }

  #isTransient(e: unknown): boolean {
    return (this.#o.isTransient ?? isTransientError)(e)
  }
}
