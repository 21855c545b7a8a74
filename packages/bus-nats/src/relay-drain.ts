import { type Checkpoint, formatCheckpoint } from '@eventplane/core'
import type { HorizonRule, PgEventStore } from '@eventplane/store-pg'
import { type Logger, errorFields } from './logger.ts'
import { natsFailure } from './nats-errors.ts'
import type { EventplaneMetrics } from './ops/metrics.ts'
import type { CheckpointWriter } from './relay-checkpoints.ts'
import { relayMessage } from './relay-encode.ts'
import { type OrderedPublisher, isOrderBreak } from './relay-publisher.ts'
import type { RelayStop } from './relay-stop.ts'
import { RELAY_TRACE, traceRead } from './relay-trace.ts'

export interface RelayStats {
  /** Events acked by JetStream since start (duplicates included). */
  published: number
  /** Acks that said JetStream already held the event (a republish after a failed publish). */
  duplicates: number
}

/** JetStream refused a publish whose predecessor is not the stream's last message, again and again. */
export class OrderBreak extends Error {}

const MAX_ORDER_BREAKS = 3

export interface RelayDrainOptions {
  /** The relay's name, for the log and the metrics' labels. */
  relay: string
  store: PgEventStore
  publisher: OrderedPublisher
  stop: RelayStop
  /** Where each drain's acked prefix goes (written in the background). */
  checkpoints: CheckpointWriter
  logger: Logger
  metrics: EventplaneMetrics | undefined
  batchSize: number
  horizonLookupMs: number
  /**
   * After a refused order check, nothing in flight: the relay flushes its checkpoint write, looks at the stream's
   * tip again and resumes there (`resumeAt`).
   */
  lookUpTip: () => Promise<void>
}

/**
 * The relay's drains: reads the log from the end of the acked prefix and
 * publishes it until caught up, moving the checkpoint over what JetStream
 * acked. The acked prefix, not the stored checkpoint, is where the next drain
 * reads from (a new event never waits for a checkpoint commit, issue 15); the
 * event id at its end is what the next drain's first publish expects as the
 * stream's last message. Counts what was published (`stats`, the metrics).
 */
export class RelayDrain {
  readonly #o: RelayDrainOptions
  /** The end of the acked prefix, set as the checkpoint but maybe not stored yet: where the next drain reads from. */
  #acked: Checkpoint | undefined
  /** The event id at #acked when known (the stream's tip): what the first publish of the next drain expects. */
  #ackedId: string | undefined
  #stats: RelayStats = { published: 0, duplicates: 0 }
  /** What of the publisher's acked prefix was already counted in stats, metrics and the checkpoint. */
  #counted = { acked: 0, duplicates: 0 }
  /** When a read last asked for the exact horizon (performance.now()). */
  #lookedAt = Number.NEGATIVE_INFINITY

  constructor(options: RelayDrainOptions) {
    this.#o = options
  }

  /** The end of the acked prefix (maybe not stored yet). */
  get acked(): Checkpoint | undefined {
    return this.#acked
  }

  /** Events acked in the last run of the drain (for RELAY_TRACE.drain). */
  get ackedLastRun(): number {
    return this.#counted.acked
  }

  get stats(): Readonly<RelayStats> {
    return { ...this.#stats }
  }

  /** The next drain reads after `checkpoint`, its first publish expecting `tipId` (the stream's last message) if known. */
  resumeAt(checkpoint: Checkpoint, tipId: string | undefined): void {
    this.#acked = checkpoint
    this.#ackedId = tipId
  }

  /** The next drain reads with the exact horizon (the stop's last drain: another database must not hold it back). */
  lookExact(): void {
    this.#lookedAt = Number.NEGATIVE_INFINITY
  }

  /**
   * Reads and publishes from the acked prefix until caught up (or stopping,
   * after the current batch; in the stop's last drain, past its deadline). Publishes are one continuous window across
   * batches (see OrderedPublisher), the next batch is read while one
   * publishes (readAllText reads ahead), and after each batch the checkpoint
   * moves to the end of the acked prefix, written in the background,
   * coalesced (see CheckpointWriter). The drain ends only after every publish
   * settled and its last checkpoint was set; that write may still be in
   * flight (the relay waits for it). On failure it leaves no write behind it. Past the stop's deadline (its
   * publishes abandoned, see RelayStop) it ends as if caught up.
   */
  async run(): Promise<void> {
    const { publisher, stop, checkpoints } = this.#o
    try {
      for (let breaks = 0; ; ) {
        publisher.resetChain(this.#ackedId)
        this.#counted = { acked: 0, duplicates: 0 }
        try {
          const tracing = RELAY_TRACE.read.hasSubscribers
          let readAt = tracing ? performance.now() : 0
          let read = 0
          // One rule for every page of the drain: a backlog read with the exact horizon goes on with it
          // (a page of xmin could stop short, and nothing wakes the relay for the rest but its poll).
          const rule = this.#horizon()
          const reads = stop.pages(
            this.#o.store.readAllText({ from: this.#acked, batchSize: this.#o.batchSize, horizon: () => rule }),
          )
          for await (const rows of reads) {
            if (tracing) readAt = traceRead(readAt, rows)
            read += rows.length
            for (const row of rows) {
              while (publisher.full) await publisher.slot()
              if (!publisher.send(relayMessage(row))) break
            }
            if (tracing) RELAY_TRACE.sent.publish({ at: performance.now(), ids: rows.map((r) => r.event_id) })
            this.#progress()
            if (publisher.failed || stop.drainOver) break
          }
          if (tracing && read === 0) traceRead(readAt, [])
          // The tail: the checkpoint follows the acks as they come, not only once the last one is in.
          while (publisher.inFlight > 0) {
            await publisher.slot()
            this.#progress()
          }
        } finally {
          await publisher.settle()
        }
        this.#progress()
        if (publisher.prefix.acked > 0) breaks = 0
        const failure = publisher.failure
        if (!publisher.failed || publisher.abandoned) return
        const stuck = publisher.stuck!
        const where = {
          relay: this.#o.relay,
          event_id: stuck.event.event_id,
          type: stuck.event.type,
          position: stuck.position.toString(),
        }
        // A refused order check is not an outage: retry at once, unless it keeps happening without progress
        // or the stream was replaced under us (its new copy must be filled from the start).
        if (!isOrderBreak(failure)) {
          const error = natsFailure(failure, `publish event ${stuck.event.event_id}`)
          // JetStream's own refusal (10077 when the stream cannot store it: full at max_bytes) is counted by code,
          // so a full stream, which stops publishing for every tenant, can be alerted on without reading logs.
          const apiCode = error.details.api_code
          if (typeof apiCode === 'number')
            this.#o.metrics?.relay.publishRefusals.inc({ relay: this.#o.relay, api_code: String(apiCode) })
          this.#o.logger.warn(
            { ...where, ...errorFields(error), ...(typeof apiCode === 'number' ? { api_code: apiCode } : {}) },
            'publish failed',
          )
          throw error
        }
        this.#o.logger.info(
          { ...where, ...errorFields(failure) },
          "stream order check refused a publish; resuming after the stream's last message",
        )
        if (++breaks > MAX_ORDER_BREAKS) throw new OrderBreak()
        const expected = this.#ackedId
        await stop.bounded(this.#o.lookUpTip(), "the look-up of the stream's tip")
        // The stream ends where the relay thought, yet its expectation was refused: the server does not know
        // its last id (restarted with a tip older than the duplicate window). The next publish expects nothing.
        if (this.#ackedId === expected) this.#ackedId = undefined
      }
    } catch (e) {
      await publisher.settle()
      await stop.settles(checkpoints.settle())
      throw e
    }
  }

  /**
   * The rule of the next drain's reads: the exact horizon at most once per
   * `horizonLookupMs`, the snapshot's xmin otherwise (with 0020's floor: see RelayOptions).
   */
  #horizon(): HorizonRule {
    const at = performance.now()
    const exact = at - this.#lookedAt >= this.#o.horizonLookupMs
    if (exact) this.#lookedAt = at
    if (RELAY_TRACE.horizon.hasSubscribers) RELAY_TRACE.horizon.publish({ at, exact })
    return exact ? 'exact' : 'xmin'
  }

  /**
   * Counts the events acked since the last call and moves the checkpoint to
   * the end of the acked prefix (everything before it is in the stream; the
   * events after it are republished on retry, and JetStream drops copies it
   * holds by `Nats-Msg-Id`).
   */
  #progress(): void {
    const { last, acked, duplicates } = this.#o.publisher.prefix
    const events = acked - this.#counted.acked
    if (events === 0 || last === undefined) return
    const dups = duplicates - this.#counted.duplicates
    this.#counted = { acked, duplicates }
    this.#stats.published += events
    this.#stats.duplicates += dups
    const { metrics, relay } = this.#o
    if (metrics) {
      metrics.relay.published.inc({ relay }, events)
      if (dups > 0) metrics.relay.duplicates.inc({ relay }, dups)
    }
    const checkpoint = { txId: last.txId, position: last.position }
    this.#acked = checkpoint
    this.#ackedId = last.event.event_id
    this.#o.checkpoints.set(checkpoint)
    this.#o.logger.debug(
      { relay, events, duplicates: dups, checkpoint: formatCheckpoint(checkpoint) },
      'events published',
    )
  }
}
