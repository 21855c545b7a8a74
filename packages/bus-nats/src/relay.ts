import { setTimeout as sleep } from 'node:timers/promises'
import {
  type Checkpoint,
  START,
  Unavailable,
  compareCheckpoints,
  formatCheckpoint,
  isEventplaneError,
} from '@eventplane/core'
import { PgEventStore, RelayLease, type Sql, loadRelayRecord } from '@eventplane/store-pg'
import { type JetStreamManager, type StreamInfo, jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import { type Logger, errorFields, silentLogger } from './logger.ts'
import { natsFailure, JS_API, isJsApiError } from './nats-errors.ts'
import { LogWaker } from './pg-listener.ts'
import type { EventplaneMetrics } from './ops/metrics.ts'
import { TransactionGuard } from './relay-guard.ts'
import { CheckpointWriter } from './relay-checkpoints.ts'
import { collectRelayGauges } from './relay-gauges.ts'
import { type RelayOptions, type ResolvedRelayOptions, relayName, resolveRelayOptions } from './relay-options.ts'
import { RelayDrain, type RelayStats } from './relay-drain.ts'
import { ForeignStream, type ResumePoint, resumePoint, warnOldServer } from './relay-resume.ts'
import { OrderedPublisher } from './relay-publisher.ts'
import { RelayStop } from './relay-stop.ts'
import type { StopWaits } from './server-wait.ts'
import { RELAY_TRACE } from './relay-trace.ts'
import { ensureStream } from './stream.ts'
import { STREAM_NAME } from './subjects.ts'

export type RelayState = 'new' | 'standby' | 'starting' | 'active' | 'retrying' | 'stopped'

export type { RelayStats } from './relay-drain.ts'

/** The lease was lost: another relay may be active now, so this one must stand by. */
class LeaseLost extends Error {}

/** The stream is gone: re-ensure it and decide the checkpoint again by what the new one holds. */
class StreamReplaced extends Error {}

const QUICK_POLL_MS = 25

/**
 * The only publisher of log subjects (DESIGN §4). Holds a lease per name in
 * PostgreSQL (standby relays wait and take over when the holder's session
 * dies; see RelayLease), reads the gap-safe global order from its
 * checkpoint, publishes each event with `Nats-Msg-Id = event_id` keeping at
 * most `maxInFlight` acks outstanding, and stores its checkpoint only over
 * the acked prefix of each batch. On becoming active it resumes right after
 * the stream's last message (an event of this log, checked in PostgreSQL;
 * see resumePoint), so neither a checkpoint that lags the stream after a
 * crash nor a stale stream `created` republishes anything, and a stream
 * behind the checkpoint is refilled: never a skip. Woken by LISTEN, with
 * polling as the fallback; retries with backoff when NATS or PostgreSQL
 * are down. Reports (and may end) transactions that hold the log back (see
 * TransactionGuard). Logs ids, types and positions, never data.
 */
export class Relay {
  readonly name: string
  /** Settles when the relay stopped: resolves after `stop()`, rejects on a fatal error (a permission refusal). */
  readonly closed: Promise<void>
  readonly #sql: Sql
  readonly #nc: NatsConnection
  readonly #store: PgEventStore
  readonly #publisher: OrderedPublisher
  readonly #drain: RelayDrain
  readonly #waker: LogWaker
  readonly #logger: Logger
  readonly #guard: TransactionGuard
  readonly #metrics: EventplaneMetrics | undefined
  readonly #o: ResolvedRelayOptions
  readonly #stop: RelayStop
  #jsm: JetStreamManager | undefined
  readonly #lease: RelayLease
  #holding = false
  #checkpoint: Checkpoint | undefined
  readonly #checkpoints = new CheckpointWriter(async (c) => {
    if (!(await this.#lease.storeCheckpoint(c, this.#streamCreated)))
      throw new LeaseLost('the relay lock was lost before the checkpoint was stored')
    this.#checkpoint = c
  })
  /** `created` of the stream this relay publishes to; stored with every checkpoint. */
  #streamCreated = ''
  #state: RelayState = 'new'
  #serverChecked = false
  /** The last LISTEN started. */
  #listening: Promise<void> | undefined
  #settle!: { resolve: () => void; reject: (e: unknown) => void }

  constructor(options: RelayOptions) {
    this.name = relayName(options.name)
    this.#sql = options.sql
    this.#nc = options.nc
    this.#store = new PgEventStore(options.sql)
    this.#logger = options.logger ?? silentLogger
    this.#waker = new LogWaker(options.sql, this.#logger)
    this.#o = resolveRelayOptions(options)
    this.#lease = new RelayLease(options.sql, this.name, { timeoutMs: this.#o.leaseTimeoutMs })
    this.#guard = new TransactionGuard(options.sql, this.#logger, options.guard, { relay: this.name })
    this.#publisher = new OrderedPublisher(options.nc, {
      maxInFlight: this.#o.maxInFlight,
      timeoutMs: this.#o.publishTimeoutMs,
      stream: STREAM_NAME,
    })
    const drainMs = this.#o.stopDrainMs
    this.#stop = new RelayStop({ relay: this.name, drainMs, publisher: this.#publisher, logger: this.#logger })
    this.#metrics = options.metrics
    this.#drain = new RelayDrain({
      relay: this.name,
      store: this.#store,
      publisher: this.#publisher,
      stop: this.#stop,
      checkpoints: this.#checkpoints,
      logger: this.#logger,
      metrics: this.#metrics,
      batchSize: this.#o.batchSize,
      horizonLookupMs: this.#o.horizonLookupMs,
      lookUpTip: () => this.#checkpoints.flush().then(() => this.#checkStream({ always: true })),
    })
    this.closed = new Promise<void>((resolve, reject) => (this.#settle = { resolve, reject }))
    this.closed.catch(() => {})
    const removeCollector = this.#metrics?.addCollector(`relay:${this.name}`, () => this.#collect())
    if (removeCollector) this.closed.finally(removeCollector).catch(() => {})
  }

  /** Scrape-time gauges (see collectRelayGauges). */
  #collect(): Promise<void> {
    return collectRelayGauges(this.#metrics!, {
      name: this.name,
      sql: this.#sql,
      store: this.#store,
      active: this.#state === 'active',
      checkpoint: this.#checkpoint,
    })
  }

  get state(): RelayState {
    return this.#state
  }

  /** The last checkpoint this relay stored (or loaded when it became active). */
  get checkpoint(): Checkpoint | undefined {
    return this.#checkpoint
  }

  /** How long a stop goes on publishing before its deadline (RelayOptions.stopDrainMs): what a companion's stop is bounded by. */
  get stopDrainMs(): number {
    return this.#o.stopDrainMs
  }

  get stats(): Readonly<RelayStats> {
    return this.#drain.stats
  }

  /** Starts the relay loop in the background and returns at once; watch `state` and `closed`. */
  start(): void {
    if (this.#state !== 'new') throw new Error('a relay starts once')
    this.#state = 'standby'
    this.#run().then(this.#settle.resolve, this.#settle.reject)
  }

  /**
   * Stops gracefully: an active relay publishes what was committed before
   * the call, for at most `stopDrainMs`; publishes not acked by then are
   * abandoned, and a JetStream request or a read in flight then is given up
   * (see RelayStop); the checkpoint of the acked prefix is stored and the lock
   * released, each skipped when PostgreSQL does not answer in time. Resolves
   * within `stopDrainMs` + RELAY_STOP_GRACE_MS (2 s), also after a fatal error. With `waits` (a process's stop,
   * see StopWaits) the drain is one of its waits for the server: shorter once the server did not answer an
   * earlier one, and publishes it abandons, or a JetStream API request unanswered at its deadline (a stop while
   * the relay starts), mark that stop stalled (see RelayStop.request).
   */
  async stop(waits?: StopWaits): Promise<void> {
    this.#stop.request(waits)
    if (this.#state === 'new') {
      this.#stop.done()
      this.#state = 'stopped'
      this.#settle.resolve()
    }
    await this.closed.catch(() => {})
  }

  async #run(): Promise<void> {
    let failures = 0
    try {
      while (!this.#stop.requested) {
        try {
          if (!this.#holding && !(await this.#acquire())) break
          this.#state = 'starting'
          const stop = this.#stop
          this.#jsm ??= await stop.bounded(
            stop.onServer(jetstreamManager(this.#nc, { timeout: this.#o.apiTimeoutMs })),
            'the account check',
          )
          const stream = await stop.bounded(
            stop.onServer(ensureStream(this.#jsm, this.#o.stream)),
            `the check of ${STREAM_NAME}`,
          )
          const resume = await stop.bounded(this.#checkpointFor(stream), 'the look-up of where to resume')
          this.#resumeAt(resume)
          this.#listening = this.#waker.listen()
          await stop.bounded(this.#listening, 'LISTEN')
          this.#state = 'active'
          this.#logger.info({ relay: this.name, checkpoint: formatCheckpoint(resume.checkpoint) }, 'relay active')
          if (!this.#serverChecked) this.#serverChecked = warnOldServer(this.#nc.info?.version, this.#logger, this.name)
          await this.#pump(() => (failures = 0))
        } catch (err) {
          if (isEventplaneError(err, 'bus.forbidden') || isEventplaneError(err, 'store.forbidden')) throw err
          if (err instanceof ForeignStream) throw err
          if (this.#nc.isClosed())
            throw new Unavailable('bus.unavailable', 'the NATS connection was closed', { cause: err })
          if (this.#stop.requested) {
            // A step cut at the deadline (StopDeadlinePassed) or a failure: the next active relay starts over.
            this.#logger.warn({ relay: this.name, ...errorFields(err) }, 'relay stopping: interrupted')
            break
          }
          failures++
          this.#state = 'retrying'
          this.#logger.warn({ relay: this.name, failures, ...errorFields(err) }, 'relay interrupted; retrying')
          // Given up at a stop's deadline: the stop releases the lease (or ends its session) itself.
          await this.#stop.bounded(this.#keepLeaseIfHeld(err instanceof LeaseLost), 'the lease check').catch(() => {})
          const backoff = Math.min(this.#o.maxBackoffMs, 100 * 2 ** Math.min(failures - 1, 16))
          await sleep(backoff * (0.8 + Math.random() * 0.4), undefined, { signal: this.#stop.signal }).catch(() => {})
        }
      }
    } finally {
      this.#stop.done()
      this.#publisher.close()
      this.#holding = false
      await Promise.all([this.#stop.settles(this.#waker.unlisten()), this.#stop.closeLease(this.#lease)])
      // A LISTEN given up at the stop's deadline may still come: end it then.
      void this.#listening?.then(() => this.#waker.unlisten())
      this.#state = 'stopped'
      this.#logger.info(
        { relay: this.name, checkpoint: this.#checkpoint && formatCheckpoint(this.#checkpoint) },
        'relay stopped',
      )
    }
  }

  /**
   * The checkpoint to publish from into `stream`, decided by what the stream
   * holds (see resumePoint): right after its last message, whatever the
   * stored checkpoint says, so a checkpoint that lags the stream (written in
   * the background, lost in a crash) republishes nothing and one ahead of it
   * refills what the stream lacks. Stored with the stream's `created`, moved
   * back when the stream is behind it. Runs holding the lease, before a publish.
   */
  async #checkpointFor(stream: StreamInfo): Promise<ResumePoint> {
    const stored = await loadRelayRecord(this.#sql, this.name)
    const resume = await resumePoint(this.#jsm!, this.#sql, stream, stored, (p) => this.#stop.onServer(p))
    this.#streamCreated = stream.created
    const { checkpoint } = resume
    const moved = stored !== undefined && compareCheckpoints(stored.checkpoint, checkpoint) !== 0
    const fields = {
      relay: this.name,
      stream: STREAM_NAME,
      checkpoint: formatCheckpoint(checkpoint),
      ...(stored ? { stored: formatCheckpoint(stored.checkpoint) } : {}),
    }
    if (resume.replaced)
      this.#logger.warn(
        fields,
        'the stream is not the one the checkpoint refers to; republishing the log from the start',
      )
    else if (moved) this.#logger.info(fields, "resuming after the stream's last message, not at the stored checkpoint")
    const unchanged =
      stored === undefined
        ? compareCheckpoints(checkpoint, START) === 0
        : !moved && stored.streamCreated === stream.created
    if (!unchanged && !(await this.#lease.storeCheckpoint(checkpoint, stream.created, { reset: resume.reset })))
      throw new LeaseLost('the relay lock was lost before the checkpoint was stored')
    return resume
  }

  /** Publishes from `resume` on: the checkpoint loaded, the next drain reading after it. */
  #resumeAt(resume: ResumePoint): void {
    this.#checkpoint = resume.checkpoint
    this.#drain.resumeAt(resume.checkpoint, resume.eventId)
  }

  /**
   * Throws StreamReplaced when the stream is gone. A `created` that differs
   * from the one this relay publishes to is not proof of a new stream
   * (nats-server before 2.9.16 can tell two racing creates both that they
   * made it): the stream is checked and the checkpoint decided again by its
   * content; `always` decides again with an unchanged `created` too (after a
   * refused order check: the stream holds more or less than the relay
   * thought). Called between drains only (nothing in flight, the checkpoint
   * write flushed).
   */
  async #checkStream(options: { always?: boolean } = {}): Promise<void> {
    let created: string
    try {
      created = (await this.#stop.onServer(this.#jsm!.streams.info(STREAM_NAME))).created
    } catch (e) {
      if (isJsApiError(e, JS_API.streamNotFound)) throw new StreamReplaced(`stream ${STREAM_NAME} was deleted`)
      throw natsFailure(e, `read stream ${STREAM_NAME}`)
    }
    if (created === this.#streamCreated && options.always !== true) return
    this.#resumeAt(await this.#checkpointFor(await this.#stop.onServer(ensureStream(this.#jsm!, this.#o.stream))))
  }

  /** Waits for the lock; false when stopped first. Throws when PostgreSQL is unreachable. */
  async #acquire(): Promise<boolean> {
    let announced = false
    while (!this.#stop.requested) {
      this.#state = 'standby'
      this.#holding = await this.#stop.bounded(this.#lease.tryAcquire(), 'taking the lease')
      if (this.#holding) return true
      if (!announced) this.#logger.info({ relay: this.name }, 'another relay is active; standing by')
      announced = true
      await sleep(this.#o.lockRetryMs, undefined, { signal: this.#stop.signal }).catch(() => {})
    }
    return false
  }

  /** After a failure: keep the lease only if its session provably still holds the lock. */
  async #keepLeaseIfHeld(knownLost: boolean): Promise<void> {
    if (!this.#holding) return
    const held = knownLost ? false : await this.#lease.held().catch(() => false)
    if (held) return
    this.#holding = false
    await this.#lease.release()
    this.#logger.warn({ relay: this.name }, 'relay lost its lock; standing by')
  }

  /**
   * Publishes until stopped: drain, then wait for a notification or the poll
   * interval. The checkpoint of a drain is written in the background (see
   * CheckpointWriter): the next read does not wait for that commit, so an
   * event appended meanwhile is not held up by it (issue 15). A failed write
   * surfaces at the next drain or lease check; a graceful stop stores the
   * last one (or skips it, see RelayStop.storeLastCheckpoint); any other exit
   * waits for the write in flight (a stopping one, only within the stop's grace)
   * and drops the rest.
   */
  async #pump(onProgress: () => void): Promise<void> {
    let quickMs = 0
    let leaseCheckedAt = Date.now()
    try {
      while (!this.#stop.requested) {
        const drainAt = performance.now()
        await this.#drain.run()
        if (RELAY_TRACE.drain.hasSubscribers)
          RELAY_TRACE.drain.publish({ startedAt: drainAt, at: performance.now(), events: this.#drain.ackedLastRun })
        onProgress()
        if (this.#stop.requested) break
        // After a notification, re-read soon and then less often: the new rows
        // may be held back by an older transaction still open elsewhere.
        const idleMs = this.#o.wakePollMs
        const reason = await this.#waker.wait(quickMs || idleMs, this.#stop.signal)
        if (reason === 'notified') quickMs = Math.min(QUICK_POLL_MS, idleMs)
        else if (reason === 'timeout' && quickMs > 0) quickMs = quickMs * 2 >= idleMs ? 0 : quickMs * 2
        if (Date.now() - leaseCheckedAt >= this.#o.pollIntervalMs) {
          await this.#stop.bounded(this.#checkLease(), 'the lease check')
          leaseCheckedAt = Date.now()
        }
      }
      await this.#stop.lastDrain(() => {
        this.#drain.lookExact()
        return this.#drain.run()
      })
      const at = (c: Checkpoint | undefined) => (c === undefined ? null : formatCheckpoint(c))
      const where = { checkpoint: at(this.#drain.acked), stored: at(this.#checkpoint) }
      await this.#stop.storeLastCheckpoint(this.#checkpoints.flush(), this.#lease, where)
    } finally {
      await this.#stop.settles(this.#checkpoints.settle())
    }
  }

  /** Between drains: the checkpoint stored, the lease still held, the stream the same, no transaction stuck. */
  async #checkLease(): Promise<void> {
    await this.#checkpoints.flush()
    if (!(await this.#lease.held())) throw new LeaseLost('the relay lock session is gone')
    // An idle relay would otherwise notice a deleted stream only at its next publish.
    await this.#checkStream()
    await this.#guard.check()
  }
}
