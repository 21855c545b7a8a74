import { type Checkpoint, type RecordedEvent, START, compareCheckpoints, formatCheckpoint } from '@eventplane/core'
import {
  PgEventStore,
  countEventsAfter,
  ensureProjectionCheckpoint as ensureCheckpointRow,
  lockProjectionCheckpoint as lockCheckpoint,
  writeProjectionCheckpoint as writeCheckpoint,
} from '@eventplane/store-pg'
import type { Sql } from 'postgres'
import { CheckpointMoved } from '../errors.ts'
import { type Logger, silentLogger } from '@eventplane/bus-nats'
import { prefetch } from './prefetch.ts'
import { ReducerSink } from './reducer-sink.ts'
import type { ProjectionSink } from './sink.ts'
import { SqlSink } from './sql-sink.ts'
import {
  type CommitInfo,
  type Projection,
  type ProjectionProgress,
  checkProjection,
  checkpointOf,
  isSqlProjection,
} from './types.ts'

export interface EngineOptions {
  /** Events per PostgreSQL read (default 2,000). */
  batchSize?: number
  /**
   * Commit at least every this many events read during catch-up (default
   * 100,000). Reads happen outside the commit transaction, so a large value
   * does not hold a transaction open; it only delays the checkpoint.
   */
  commitEvery?: number
  /** Commit when this many states (reducer) or events (SQL) are staged (default 20,000). */
  maxPending?: number
  /** Clean reducer states kept in memory (default 10,000). */
  cacheSize?: number
  onProgress?: (p: ProjectionProgress) => void
  /**
   * Runs inside each commit transaction, after the output is written and right before the checkpoint is: a
   * throw rolls both back. Tests use it to crash a projection between its output and its checkpoint.
   */
  beforeCheckpoint?: (info: CommitInfo) => void | Promise<void>
  /** Runs after each commit, before anything is acknowledged (tests use it to simulate a crash). */
  afterCommit?: (info: CommitInfo) => void | Promise<void>
  logger?: Logger
}

/**
 * Applies the log to one projection with exactly-once effect: output and
 * checkpoint are written in one transaction that first locks the stored
 * checkpoint and checks it is still the one this engine last wrote (else
 * `CheckpointMoved`, and nothing is written). Not safe for concurrent calls;
 * the runner serializes them.
 */
export class ProjectionEngine {
  readonly projection: Projection
  readonly #sql: Sql
  readonly #store: PgEventStore
  readonly #sink: ProjectionSink
  readonly #options: EngineOptions
  readonly #log: Logger
  #committed: Checkpoint = START
  #staged: Checkpoint = START
  #stagedEvents = 0
  /** The commit still running while catch-up stages the next events (at most one). */
  #inflight: Promise<void> | undefined

  /** `sql` must be a cross-tenant role allowed to write projection output (eventplane_projector). */
  constructor(projection: Projection, sql: Sql, options: EngineOptions = {}) {
    checkProjection(projection)
    this.projection = projection
    this.#sql = sql
    this.#store = new PgEventStore(sql)
    this.#options = options
    this.#log = options.logger ?? silentLogger
    this.#sink = isSqlProjection(projection)
      ? new SqlSink(projection)
      : new ReducerSink(projection, { cacheSize: options.cacheSize })
  }

  /** The last checkpoint this engine committed or read. */
  get checkpoint(): Checkpoint {
    return this.#committed
  }

  /**
   * Reads the stored checkpoint (creating the output on first use). A stored
   * version other than the projection's means its output is stale: it is
   * dropped and rebuilt from the start.
   */
  async init(): Promise<{ rebuilt: boolean }> {
    const stored = await ensureCheckpointRow(this.#sql, this.projection.name, this.projection.version)
    if (stored.version !== this.projection.version) {
      this.#log.info(
        { projection: this.projection.name, from: stored.version, to: this.projection.version },
        'projection version changed, rebuilding',
      )
      await this.drop()
      return { rebuilt: true }
    }
    // Idempotent; also repairs a crash between creating the row and the output.
    await this.#sql.begin((tx) => this.#sink.setup(tx))
    this.#committed = this.#staged = stored.checkpoint
    this.#sink.reset()
    return { rebuilt: false }
  }

  /** Drops the output and resets the checkpoint to START, in one transaction; then sets the output up again. */
  async drop(): Promise<void> {
    const { name, version } = this.projection
    await this.#sql.begin(async (tx) => {
      await lockCheckpoint(tx, name)
      await this.#sink.drop(tx)
      await writeCheckpoint(tx, name, version, START)
      await this.#sink.setup(tx)
    })
    this.#committed = this.#staged = START
    this.#stagedEvents = 0
    if (this.#sink instanceof ReducerSink) this.#sink.markEmpty()
    else this.#sink.reset()
  }

  /**
   * Reads the gap-safe order from the checkpoint until caught up, committing
   * many events per transaction. Returns the number of events read.
   */
  async catchUp(phase: 'catch-up' | 'rebuild', signal?: AbortSignal): Promise<number> {
    const { batchSize = 2000, commitEvery = 100_000, maxPending = 20_000 } = this.#options
    const tenant = this.projection.filter?.tenant
    const started = performance.now()
    const total = this.#options.onProgress ? await countEventsAfter(this.#sql, this.#committed, tenant) : undefined
    // A SQL projection writes inside the commit transaction: keep those short (they hold back every gap-safe read).
    const pendingLimit = isSqlProjection(this.projection) ? Math.min(maxPending, batchSize) : maxPending
    let read = 0
    const report = (): void => this.#report(phase, read, started, total)
    try {
      const batches = this.#store.readAll({ from: this.#committed, batchSize, tenant, signal })
      for await (const batch of prefetch(batches)) {
        await this.#sink.stage(this.#sql, batch)
        this.#staged = checkpointOf(batch.at(-1)!)
        this.#stagedEvents += batch.length
        read += batch.length
        if (this.#sink.pending() >= pendingLimit || this.#stagedEvents >= commitEvery) {
          // Reading and staging go on while this commit runs; the next one waits for it.
          await this.#commit(phase, false)
          report()
        }
      }
      await this.#commit(phase, true)
    } catch (e) {
      await this.#inflight?.catch(() => {})
      this.#discard()
      throw e
    }
    report()
    return read
  }

  /**
   * Applies live events in one transaction. Events at or before the
   * checkpoint are skipped (already applied); an event out of order fails
   * with `CheckpointMoved` so the caller resyncs from PostgreSQL. Returns how
   * many events were new.
   */
  async applyLive(events: readonly RecordedEvent[]): Promise<number> {
    let last = this.#committed
    const fresh: RecordedEvent[] = []
    for (const e of events) {
      const c = checkpointOf(e)
      if (compareCheckpoints(c, this.#committed) <= 0) continue
      if (compareCheckpoints(c, last) <= 0) throw new CheckpointMoved(this.projection.name, last, c)
      fresh.push(e)
      last = c
    }
    if (fresh.length === 0) return 0
    try {
      await this.#sink.stage(this.#sql, fresh)
      this.#staged = last
      this.#stagedEvents = fresh.length
      await this.#commit('live', true)
    } catch (e) {
      this.#discard()
      throw e
    }
    return fresh.length
  }

  /**
   * Seals what is staged and commits it with the checkpoint after it, once
   * the previous commit finished. With `wait` false the commit runs in the
   * background; its failure surfaces at the next commit.
   */
  async #commit(phase: ProjectionProgress['phase'], wait: boolean): Promise<void> {
    const previous = this.#inflight
    this.#inflight = undefined
    await previous
    if (compareCheckpoints(this.#staged, this.#committed) === 0) return
    const { name, version } = this.projection
    const expected = this.#committed
    const next = this.#staged
    const events = this.#stagedEvents
    this.#stagedEvents = 0
    this.#sink.seal()
    const info: CommitInfo = { projection: name, checkpoint: next, events, phase }
    const run = async (): Promise<void> => {
      await this.#sql.begin(async (tx) => {
        const stored = await lockCheckpoint(tx, name)
        if (!stored || stored.version !== version || compareCheckpoints(stored.checkpoint, expected) !== 0) {
          throw new CheckpointMoved(name, expected, stored?.checkpoint)
        }
        await this.#sink.commit(tx)
        await this.#options.beforeCheckpoint?.(info)
        await writeCheckpoint(tx, name, version, next)
      })
      this.#sink.committed()
      this.#committed = next
      this.#log.debug({ projection: name, checkpoint: formatCheckpoint(next), events }, 'projection committed')
      await this.#options.afterCommit?.(info)
    }
    if (wait) return run()
    this.#inflight = run()
    this.#inflight.catch(() => {})
  }

  #discard(): void {
    this.#sink.reset()
    this.#staged = this.#committed
    this.#stagedEvents = 0
  }

  /** After `CheckpointMoved`: adopt the stored checkpoint and forget caches. */
  async resync(): Promise<void> {
    this.#discard()
    await this.init()
  }

  #report(phase: ProjectionProgress['phase'], events: number, started: number, total: number | undefined): void {
    const seconds = (performance.now() - started) / 1000
    this.#options.onProgress?.({
      projection: this.projection.name,
      phase,
      events,
      ...(total === undefined ? {} : { total: Math.max(total, events) }),
      rate: seconds > 0 ? events / seconds : 0,
      checkpoint: this.#committed,
    })
  }
}
