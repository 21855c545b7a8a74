import { type Checkpoint, type RecordedEvent, START, compareCheckpoints, formatCheckpoint } from '@eventplane/core'
import {
  PgEventStore,
  type Sql,
  VIEWS_SCHEMA,
  countEventsAfter,
  countEventsBetween,
  deleteStaleProjectionStates,
  dropStaleProjectionShadows,
  ensureProjectionCheckpoint as ensureCheckpointRow,
  ensureProjectionShadow,
  lockProjectionCheckpoint as lockCheckpoint,
  lockProjectionRebuild,
  moveShadowTables,
  shadowTables,
  startProjectionRebuild,
  streamLog,
  swapProjectionRebuild,
  typedBegin,
  writeProjectionCheckpoint as writeCheckpoint,
  writeProjectionRebuild,
} from '@eventplane/store-pg'
import { CheckpointMoved, ProjectionNotShadowable } from '../errors.ts'
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
  matchesFilter,
} from './types.ts'

export interface EngineOptions {
  /**
   * Events per PostgreSQL read (default 1,000): what a rebuild holds in memory
   * per fetch, twice (one fetch read ahead). A 1M-event rebuild peaked at a
   * median 132 MB RSS with 1,000, 156 MB with 2,000, at the same speed
   * (docs/benchmarks/journal-2026-11-30-am.md, "the read path profiled").
   */
  batchSize?: number
  /**
   * Commit at least every this many events read during catch-up and rebuild
   * (default 100,000). Reads happen outside the commit transaction, so a large
   * value does not hold a transaction open; it only bounds how much work an
   * interruption loses and how many events one transaction covers.
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
  /** Runs inside the swap transaction of a rebuild, before it commits: a throw leaves the previous output live. */
  beforeSwap?: (info: { projection: string; generation: number; checkpoint: Checkpoint }) => void | Promise<void>
  logger?: Logger
}

/** How a rebuild started: a new generation from START, or an interrupted one resumed. */
export interface RebuildStart {
  generation: number
  resumed: boolean
  /** Where it (re)starts. */
  from: Checkpoint
  /** Events an interrupted run had already applied. */
  eventsBefore: number
}

/**
 * Applies the log to one projection with exactly-once effect: output and
 * checkpoint are written in one transaction that first locks the stored
 * checkpoint and checks it is still the one this engine last wrote (else
 * `CheckpointMoved`, and nothing is written). Not safe for concurrent calls;
 * the runner serializes them.
 *
 * A projection is rebuilt in a shadow: a new generation of reducer states,
 * or a SQL projection's tables in a shadow schema, with its own checkpoint
 * (`projection_rebuilds`), swapped in as the live output in one transaction
 * once caught up. Until then readers see the previous complete output; an
 * interrupted rebuild is resumed from its checkpoint.
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
  /** The generation this engine writes; with `#rebuilding` its checkpoint is the rebuild's, not the live one. */
  #generation = 1
  #rebuilding = false
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

  /** The generation of output this engine writes (the live one, or the rebuild's shadow). */
  get generation(): number {
    return this.#generation
  }

  /**
   * Reads the stored live checkpoint (creating the output on first use). A
   * stored version other than the projection's means its output is stale:
   * `stale` is true and the caller rebuilds (`rebuild()`); the stale output
   * keeps serving until the rebuild swaps in.
   */
  async init(): Promise<{ stale: boolean }> {
    const stored = await ensureCheckpointRow(this.#sql, this.projection.name, this.projection.version)
    this.#rebuilding = false
    this.#generation = stored.generation
    this.#committed = this.#staged = stored.checkpoint
    this.#stagedEvents = 0
    if (this.#sink instanceof ReducerSink) this.#sink.useGeneration(stored.generation)
    else if (this.#sink instanceof SqlSink) this.#sink.useSchema(VIEWS_SCHEMA)
    this.#sink.reset()
    if (stored.version !== this.projection.version) {
      this.#log.info(
        { projection: this.projection.name, from: stored.version, to: this.projection.version },
        'projection version changed, rebuilding',
      )
      return { stale: true }
    }
    // Idempotent; also repairs a crash between creating the row and the output.
    const sink = this.#sink
    if (sink instanceof SqlSink) await typedBegin(this.#sql, (tx) => sink.setup(tx))
    return { stale: false }
  }

  /**
   * Starts or resumes the rebuild in a shadow and points this engine at it:
   * what `catchUp` then commits goes to the new generation (reducer states
   * tagged with it; a SQL projection's tables in a shadow schema) and to the
   * rebuild's checkpoint. `restart` throws an interrupted rebuild away.
   */
  async beginRebuild(restart = false): Promise<RebuildStart> {
    const { name, version } = this.projection
    await ensureCheckpointRow(this.#sql, name, version)
    const r = await typedBegin(this.#sql, (tx) => startProjectionRebuild(tx, name, version, restart))
    const sink = this.#sink
    if (sink instanceof SqlSink) {
      // A discarded rebuild's schema goes with its tables; then this one's is set up (idempotent).
      await dropStaleProjectionShadows(this.#sql, name)
      const schema = await ensureProjectionShadow(this.#sql, name, r.generation)
      sink.useSchema(schema)
      await typedBegin(this.#sql, (tx) => sink.setup(tx))
      if ((await shadowTables(this.#sql, schema)).length === 0) {
        sink.useSchema(VIEWS_SCHEMA)
        throw new ProjectionNotShadowable(name)
      }
      sink.reset()
    } else {
      // What a superseded rebuild left behind; bounded deletes, never the live or the new generation.
      await deleteStaleProjectionStates(this.#sql, name)
      const reducer = sink as ReducerSink<unknown>
      reducer.useGeneration(r.generation)
      if (r.resumed) reducer.reset()
      else reducer.markEmpty()
    }
    this.#rebuilding = true
    this.#generation = r.generation
    this.#committed = this.#staged = r.checkpoint
    this.#stagedEvents = 0
    this.#log.info(
      { projection: name, generation: r.generation, resumed: r.resumed, checkpoint: formatCheckpoint(r.checkpoint) },
      r.resumed ? 'projection rebuild resumed' : 'projection rebuild started',
    )
    return { generation: r.generation, resumed: r.resumed, from: r.checkpoint, eventsBefore: r.events }
  }

  /**
   * Makes the caught-up rebuild the live output in one transaction (its
   * generation, version and checkpoint), then deletes the previous
   * generation in bounded batches. A live runner of the old generation
   * notices the moved checkpoint and resyncs.
   */
  async finishRebuild(): Promise<void> {
    if (!this.#rebuilding) return
    const { name } = this.projection
    const generation = this.#generation
    const checkpoint = this.#committed
    const sink = this.#sink
    await typedBegin(this.#sql, async (tx) => {
      await lockCheckpoint(tx, name)
      const r = await lockProjectionRebuild(tx, name)
      if (!r || r.generation !== generation || compareCheckpoints(r.checkpoint, checkpoint) !== 0)
        throw new CheckpointMoved(name, checkpoint, r?.checkpoint)
      if (sink instanceof SqlSink) {
        // The live tables go and the shadow's take their place, in this one transaction.
        await sink.drop(tx, VIEWS_SCHEMA)
        await moveShadowTables(tx, sink.schema)
      }
      await swapProjectionRebuild(tx, name, generation)
      await this.#options.beforeSwap?.({ projection: name, generation, checkpoint })
    })
    this.#rebuilding = false
    this.#log.info({ projection: name, generation, checkpoint: formatCheckpoint(checkpoint) }, 'projection swapped in')
    if (sink instanceof SqlSink) {
      sink.useSchema(VIEWS_SCHEMA)
      await dropStaleProjectionShadows(this.#sql, name)
    } else await deleteStaleProjectionStates(this.#sql, name)
  }

  /**
   * Rebuilds from the log (`beginRebuild`, `catchUp`, `finishRebuild`).
   * Stopped by `signal` or a failure, it leaves the live output untouched and
   * its progress stored for the next call to resume.
   */
  async rebuild(signal?: AbortSignal, restart = false): Promise<RebuildStart & { events: number }> {
    const start = await this.beginRebuild(restart)
    const events = await this.catchUp('rebuild', signal)
    signal?.throwIfAborted()
    await this.finishRebuild()
    return { ...start, events }
  }

  /**
   * Reads the gap-safe order from the checkpoint until caught up, committing
   * many events per transaction. Returns the number of events read.
   */
  async catchUp(phase: 'catch-up' | 'rebuild', signal?: AbortSignal): Promise<number> {
    const { batchSize = 1000, commitEvery = 100_000, maxPending = 20_000 } = this.#options
    const tenant = this.projection.filter?.tenant
    const started = performance.now()
    const total = this.#options.onProgress ? await countEventsAfter(this.#sql, this.#committed, tenant) : undefined
    // A SQL projection writes inside the commit transaction: keep those short (they hold back every gap-safe
    // read): at most `batchSize` events, 2,000 when it is not set (as before reads defaulted to 1,000).
    const sqlPending = Math.min(maxPending, this.#options.batchSize ?? 2000)
    const pendingLimit = isSqlProjection(this.projection) ? sqlPending : maxPending
    let read = 0
    const report = (): void => this.#report(phase, read, started, total)
    try {
      const batches = this.#read(phase === 'rebuild' && tenant === undefined, batchSize, tenant, signal)
      for await (const batch of prefetch(batches)) {
        // Stopped: commit nothing more (what is in flight finishes); the last commit is where a rebuild resumes.
        signal?.throwIfAborted()
        await this.#sink.stage(this.#sql, batch)
        this.#staged = checkpointOf(batch.at(-1)!)
        this.#stagedEvents += batch.length
        read += batch.length
        if (this.#sink.pending() >= pendingLimit || this.#stagedEvents >= commitEvery) {
          // Reading and staging go on while this commit runs; the next one waits for it.
          await this.#commit(phase, false, signal)
          report()
        }
      }
      await this.#commit(phase, true, signal)
    } catch (e) {
      await this.#inflight?.catch(() => {})
      this.#discard()
      throw e
    }
    report()
    return read
  }

  /**
   * The log after the committed checkpoint: a rebuild streams it through one
   * cursor (one statement instead of a query per batch), then pages on with
   * `readAll` for what was committed after that statement's snapshot.
   */
  async *#read(
    stream: boolean,
    batchSize: number,
    tenant: string | undefined,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<RecordedEvent[]> {
    let from = this.#committed
    if (stream) {
      for await (const batch of streamLog(this.#sql, { from, batchSize, ...(signal ? { signal } : {}) })) {
        yield batch
        from = checkpointOf(batch.at(-1)!)
      }
    }
    yield* this.#store.readAll({ from, batchSize, tenant, signal })
  }

  /**
   * Applies live events in one transaction. Events at or before the
   * checkpoint are skipped (already applied); an event out of order fails
   * with `CheckpointMoved` so the caller resyncs from PostgreSQL. The bus may
   * deliver an event after a later one (two runners on one consumer, a
   * redelivery after the ack wait), so the commit first proves the batch
   * skips nothing: the log must hold exactly the delivered events matching
   * the filter between the checkpoint and the batch's last event, or it
   * fails with `CheckpointMoved` too. Returns how many events were new.
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
    const delivered = fresh.filter((e) => matchesFilter(this.projection.filter, e)).length
    try {
      await this.#sink.stage(this.#sql, fresh)
      this.#staged = last
      this.#stagedEvents = fresh.length
      await this.#commit('live', true, undefined, delivered)
    } catch (e) {
      this.#discard()
      throw e
    }
    return fresh.length
  }

  /**
   * Seals what is staged and commits it with the checkpoint after it, once
   * the previous commit finished. With `wait` false the commit runs in the
   * background; its failure surfaces at the next commit. With `delivered`
   * (live) the log must hold exactly that many events matching the filter
   * between the two checkpoints.
   */
  async #commit(
    phase: ProjectionProgress['phase'],
    wait: boolean,
    signal?: AbortSignal,
    delivered?: number,
  ): Promise<void> {
    const previous = this.#inflight
    this.#inflight = undefined
    await previous
    // Stopped while the previous commit ran: that one is where a rebuild resumes; nothing more is written.
    signal?.throwIfAborted()
    if (compareCheckpoints(this.#staged, this.#committed) === 0) return
    const { name, version } = this.projection
    const expected = this.#committed
    const next = this.#staged
    const events = this.#stagedEvents
    const generation = this.#generation
    const rebuilding = this.#rebuilding
    this.#stagedEvents = 0
    this.#sink.seal()
    const info: CommitInfo = { projection: name, checkpoint: next, events, phase }
    const run = async (): Promise<void> => {
      await typedBegin(this.#sql, async (tx) => {
        const stored = rebuilding ? await lockProjectionRebuild(tx, name) : await lockCheckpoint(tx, name)
        if (
          !stored ||
          stored.version !== version ||
          stored.generation !== generation ||
          compareCheckpoints(stored.checkpoint, expected) !== 0
        ) {
          throw new CheckpointMoved(name, expected, stored?.checkpoint)
        }
        if (delivered !== undefined) {
          // The relay publishes an event only once every earlier one is committed, so all are visible here.
          const logged = await countEventsBetween(tx, expected, next, this.projection.filter)
          if (logged !== delivered) throw new CheckpointMoved(name, expected, stored.checkpoint, { delivered, logged })
        }
        await this.#sink.commit(tx)
        await this.#options.beforeCheckpoint?.(info)
        if (rebuilding) await writeProjectionRebuild(tx, name, generation, next, events)
        else await writeCheckpoint(tx, name, version, next)
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
