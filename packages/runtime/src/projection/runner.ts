import { setTimeout as sleep } from 'node:timers/promises'
import { type Checkpoint, formatCheckpoint, isEventplaneError, isUnavailableError } from '@eventplane/core'
import {
  type EventplaneMetrics,
  type Logger,
  errorFields,
  eventParentContext,
  silentLogger,
  startEventSpan,
  unlessAborted,
} from '@eventplane/bus-nats'
import { SpanKind } from '@opentelemetry/api'
import { type Sql, countEventsAfter } from '@eventplane/store-pg'
import { type Deferred, deferred } from '../deferred.ts'
import {
  type LiveDelivery,
  type LiveSource,
  type LiveSubscription,
  ackFailureFields,
  ackUnlessStopped,
  batchDeliveries,
  liveSourceClosed,
  runnerStop,
} from '../live-source.ts'
import { type EngineOptions, ProjectionEngine } from './engine.ts'
import type { Projection } from './types.ts'

export interface ProjectionRunnerOptions extends EngineOptions {
  projection: Projection
  /** A pool connected as `eventplane_projector` (reads every tenant, writes projection output); at least 3 connections. */
  sql: Sql
  /** Live events (JetStream, see `jetStreamSource`). Without it the runner polls PostgreSQL. */
  live?: LiveSource
  /** Poll interval without a live source (default 250 ms). */
  pollIntervalMs?: number
  /**
   * Rebuild from the start before going live (a fresh shadow generation,
   * swapped in when caught up; the previous output serves meanwhile).
   */
  rebuild?: boolean
  /** Most deliveries applied in one transaction (default 256). */
  liveBatchSize?: number
  /** How long a live batch waits for more deliveries after its first one (default 5 ms). */
  lingerMs?: number
  /** First delay before retrying after a transient failure (default 250 ms, doubling to 10 s). */
  retryDelayMs?: number
  /** Counts applied events and, at each scrape, sets the checkpoint, lag and live gauges. */
  metrics?: EventplaneMetrics
}

/** A passing failure of PostgreSQL or NATS, or a moved checkpoint: catch up from PostgreSQL again. */
const isRecoverable = (e: unknown): boolean => isUnavailableError(e) || isEventplaneError(e, 'runtime.checkpoint_moved')

/** Thrown inside the live loop when the bus itself failed (not our transaction): reconnect. */
class LiveSourceFailed extends Error {}

/**
 * Keeps one projection up to date. On start it ensures the durable consumer
 * first, then catches up from PostgreSQL (optionally after a rebuild), then
 * applies live deliveries, skipping any at or before its checkpoint; a
 * delivery is acknowledged only after the transaction holding its effect and
 * the checkpoint committed. Transient failures and a moved checkpoint make it
 * catch up from PostgreSQL again, unless the live source was closed for good
 * (`bus.unavailable`, see `LiveSource.isClosed`); anything else stops it and rejects `closed`.
 */
export class ProjectionRunner {
  readonly engine: ProjectionEngine
  /** Settles when the runner stops: resolves after `stop()`, rejects on a fatal error. */
  readonly closed: Promise<void>
  readonly #options: ProjectionRunnerOptions
  readonly #log: Logger
  readonly #abort = runnerStop()
  readonly #ready: Deferred<void> = deferred()
  readonly #runWhenStarted: () => Promise<void>
  #live = false
  #started = false

  constructor(options: ProjectionRunnerOptions) {
    this.#options = options
    this.#log = options.logger ?? silentLogger
    const metrics = options.metrics
    const name = options.projection.name
    this.engine = new ProjectionEngine(
      options.projection,
      options.sql,
      metrics === undefined
        ? options
        : {
            ...options,
            afterCommit: async (info) => {
              metrics.runtime.projectionApplied.inc({ projection: name }, info.events)
              await options.afterCommit?.(info)
            },
          },
    )
    const { promise, resolve, reject } = deferred<void>()
    this.closed = promise
    this.#runWhenStarted = () =>
      this.#run().then(resolve, (e: unknown) => {
        this.#ready.reject(e)
        reject(e)
      })
    this.closed.catch(() => {})
    this.#ready.promise.catch(() => {})
    const removeCollector = metrics?.addCollector(`projection:${name}`, async () => {
      const labels = { projection: name }
      const checkpoint = this.engine.checkpoint
      metrics.runtime.projectionLive.set(labels, this.#live ? 1 : 0)
      metrics.runtime.projectionCheckpoint.set(labels, Number(checkpoint.position))
      const lag = await countEventsAfter(options.sql, checkpoint, options.projection.filter?.tenant)
      metrics.runtime.projectionLag.set(labels, lag)
    })
    if (removeCollector) this.closed.finally(removeCollector).catch(() => {})
  }

  get checkpoint(): Checkpoint {
    return this.engine.checkpoint
  }

  /** True once caught up and consuming live. */
  get isLive(): boolean {
    return this.#live
  }

  /** Starts the runner; resolves once it has caught up and is live, rejects if it failed before. */
  start(): Promise<void> {
    if (!this.#started) {
      this.#started = true
      void this.#runWhenStarted()
    }
    return this.#ready.promise
  }

  /** Stops after the current transaction; resolves when stopped (never rejects). */
  async stop(): Promise<void> {
    this.#abort.abort()
    if (!this.#started) return
    await this.closed.catch(() => {})
  }

  async #run(): Promise<void> {
    const { projection, live, rebuild } = this.#options
    const signal = this.#abort.signal
    const name = projection.name
    let initialized = false
    let pendingRebuild = false
    let restart = rebuild === true
    let phase: 'rebuild' | 'catch-up' = 'catch-up'
    let failures = 0
    let resync = false
    let prepared = true
    while (!signal.aborted) {
      try {
        if (!initialized) {
          // Inside the retry loop: a runner started before PostgreSQL or NATS answers waits for them like any
          // transient failure (processes start in any order, docs/deploying.md); a refused login stays fatal.
          // Given up at stop() (breaks below): a consumer check held by a stalling server must not hold the stop.
          if (live) await unlessAborted(live.prepare(), signal)
          const { stale } = await this.engine.init()
          // A changed version resumes an interrupted rebuild of that version; `rebuild` starts afresh.
          pendingRebuild = rebuild === true || stale
          phase = pendingRebuild ? 'rebuild' : 'catch-up'
          initialized = true
          resync = false
        }
        // After a live failure the consumer may be gone (deleted, or with its stream): ensure it
        // again before catching up, so nothing appended meanwhile is missed.
        if (live && !prepared) await this.#prepareAgain(live, signal)
        prepared = true
        if (resync) await this.engine.resync()
        resync = false
        let read: number
        if (pendingRebuild) {
          // Retried after a failure, the rebuild resumes (another run of the same full rebuild).
          const fresh = restart
          restart = false
          read = (await this.engine.rebuild(signal, fresh)).events
          pendingRebuild = false
        } else read = await this.engine.catchUp(phase, signal)
        this.#log.info(
          { projection: name, phase, events: read, checkpoint: formatCheckpoint(this.checkpoint) },
          'projection caught up',
        )
        phase = 'catch-up'
        failures = 0
        this.#live = true
        this.#ready.resolve()
        if (live) await this.#consumeLive(live, signal)
        else await sleep(this.#options.pollIntervalMs ?? 250, undefined, { signal })
      } catch (e) {
        this.#live = false
        if (signal.aborted) break
        // Closed for good (e.g. its user revoked): no catch-up brings it back; end, for the owner to say why.
        if (live?.isClosed?.()) throw liveSourceClosed(e)
        if (!isRecoverable(e) && !(e instanceof LiveSourceFailed)) throw e
        if (e instanceof LiveSourceFailed) prepared = false
        resync = true
        const delay = Math.min((this.#options.retryDelayMs ?? 250) * 2 ** failures++, 10_000)
        this.#log.warn(
          { projection: name, ...errorFields(e), retry_in_ms: delay },
          'projection resyncing from PostgreSQL',
        )
        await sleep(delay, undefined, { signal }).catch(() => {})
      }
    }
    this.#live = false
  }

  async #prepareAgain(live: LiveSource, signal: AbortSignal): Promise<void> {
    try {
      await unlessAborted(live.prepare(), signal)
    } catch (e) {
      if (signal.aborted) throw e
      throw new LiveSourceFailed(`live source could not be prepared: ${errorFields(e).err}`, { cause: e })
    }
  }

  /**
   * Acks a committed batch. A failed ack (final: the bus already sent it again) leaves its event to be
   * redelivered and skipped by the checkpoint; the failures are logged by event id, and the live source is
   * opened again from a fresh catch-up (its connection or consumer is likely what failed).
   */
  async #ackBatch(batch: LiveDelivery[]): Promise<void> {
    const acked = await ackUnlessStopped(Promise.allSettled(batch.map((d) => d.ack())), this.#abort.signal)
    // Stopping, acks the server does not answer are left: their events come back and the checkpoint skips them.
    if (acked === 'abandoned') return
    const outcomes = acked
    const failed = batch.flatMap((d, i) => {
      const outcome = outcomes[i]!
      return outcome.status === 'rejected' ? [{ d, reason: outcome.reason as unknown }] : []
    })
    if (failed.length === 0) return
    const first = failed[0]!
    this.#log.warn(
      {
        projection: this.#options.projection.name,
        failed: failed.length,
        batch: batch.length,
        // The first ten: enough to follow them in the log without a line per event.
        event_ids: failed.slice(0, 10).map((f) => f.d.event.event_id),
        ...ackFailureFields(first.reason),
      },
      'acks failed after the batch committed; their events will be redelivered and skipped by the checkpoint',
    )
    throw new LiveSourceFailed(`ack failed: ${errorFields(first.reason).err}`, { cause: first.reason })
  }

  async #consumeLive(live: LiveSource, signal: AbortSignal): Promise<void> {
    const { liveBatchSize = 256, lingerMs = 5, onProgress, projection } = this.#options
    const started = performance.now()
    let events = 0
    let sub: LiveSubscription
    try {
      sub = await live.open(signal)
    } catch (e) {
      throw new LiveSourceFailed(`live source failed: ${errorFields(e).err}`, { cause: e })
    }
    try {
      const batches = batchDeliveries(sub, liveBatchSize, lingerMs)
      for (;;) {
        let next: IteratorResult<LiveDelivery[]>
        try {
          next = await batches.next()
        } catch (e) {
          if (signal.aborted) return
          throw new LiveSourceFailed(`live source failed: ${errorFields(e).err}`, { cause: e })
        }
        if (next.done) break
        const batch = next.value
        // One span per applied batch, under the first delivery's traceparent (the projection's hop of its trace).
        const first = batch[0]!
        const span = startEventSpan(
          'eventplane project',
          SpanKind.CONSUMER,
          first.event,
          eventParentContext(first.event, first.traceparent),
        )
        span.setAttributes({ 'eventplane.projection': projection.name, 'eventplane.batch_size': batch.length })
        try {
          await this.engine.applyLive(batch.map((d) => d.event))
        } catch (e) {
          // Not acknowledged: redelivered later and skipped once PostgreSQL catch-up passed it.
          if (isRecoverable(e)) for (const d of batch) d.nak()
          throw e
        } finally {
          span.end()
        }
        await this.#ackBatch(batch)
        events += batch.length
        const seconds = (performance.now() - started) / 1000
        onProgress?.({
          projection: projection.name,
          phase: 'live',
          events,
          rate: seconds > 0 ? events / seconds : 0,
          checkpoint: this.checkpoint,
        })
      }
    } finally {
      await sub.stop()
    }
    if (!signal.aborted) throw new LiveSourceFailed('live subscription ended')
  }
}
