import type { Sql } from 'postgres'
import {
  type Checkpoint,
  type EnvelopeCheckOptions,
  type ExpectedVersion,
  type RecordedEvent,
  type SchemaRegistry,
  type StreamRef,
  type ValidEnvelope,
  EXPECTED_VERSION_RULE,
  InvalidEnvelope,
  START,
  StreamMismatch,
  TenantMismatch,
  Unavailable,
  WrongExpectedVersion,
  formatStream,
  isExpectedVersion,
  isReservedCategory,
  isSystemEnvelope,
  refuseReservedCategory,
  ensureStreamRef,
  isValidEnvelope,
  validateCategory,
  validateEnvelope,
  validateStreamId,
  validateTenant,
} from '@eventplane/core'
import { AppendNotifier } from './append-notifier.ts'
import { mapPgError } from './pg-errors.ts'
import { type EventValues, decimalBigInt, mapAndRelease, toEventTextRow, toRecordedEvent, utcInstant } from './rows.ts'
import { type AppendedRow, appendSql } from './sql/append.ts'
import { listStreamsSql } from './sql/list-streams.ts'
import { type EventTextRow, type HorizonRule, readAllSql, readAllTextSql } from './sql/read-all.ts'
import { readCategorySql } from './sql/read-category.ts'
import { readCorrelationSql } from './sql/read-correlation.ts'
import { readEventsByIdSql } from './sql/read-events-by-id.ts'
import { readStreamSql } from './sql/read-stream.ts'

export type { ExpectedVersion }

export interface AppendOptions {
  /** Exact last version, `no_stream` (the stream must be empty) or `any` (default). */
  expectedVersion?: ExpectedVersion
}

export interface AppendedEvent {
  eventId: string
  streamVersion: number
  position: bigint
  txId: bigint
  recordedAt: string
}

export interface AppendResult {
  /** The stream's last version after this append: the next `expectedVersion`. */
  nextExpectedVersion: number
  events: AppendedEvent[]
  /** True when every event was already stored identically (an idempotent retry). */
  replayed: boolean
}

export interface ReadStreamOptions {
  direction?: 'forward' | 'backward'
  /** First version to return (forward, default 1) or last (backward, default the end). */
  fromVersion?: number
  maxCount?: number
  batchSize?: number
  signal?: AbortSignal
}

export interface ReadAllOptions {
  from?: Checkpoint
  batchSize?: number
  /** Limit to one tenant (RLS-scoped); omit only with a cross-tenant role. */
  tenant?: string
  signal?: AbortSignal
}

export interface ReadCategoryOptions {
  /** Read after this checkpoint (default: the start of the log). */
  from?: Checkpoint
  batchSize?: number
  signal?: AbortSignal
}

export interface ListStreamsOptions {
  /** Only streams of this category. */
  category?: string
  /** List after this stream, in (category, id) order: the last one of the previous page. */
  after?: { category: string; id: string }
  /** At most this many streams (default 100). */
  limit?: number
}

/** A stream of a tenant and where it stands. */
export interface StreamSummary {
  stream: StreamRef
  /** The last version: the stream's event count and the next `expectedVersion`. */
  version: number
  lastType: string
  lastRecordedAt: string
}

/** `maxDataBytes` and `registry` apply to envelopes the store must check itself (see `append`). */
export interface EventStoreOptions extends EnvelopeCheckOptions {
  /** Largest batch accepted by one append. */
  maxBatchSize?: number
  registry?: SchemaRegistry
  /**
   * Wake the relay after appends commit with one coalesced NOTIFY (see
   * AppendNotifier). Default true; off, the relay finds appends by polling.
   */
  notifyAppends?: boolean
  /** NOTIFYs of the store's notifier in flight at once (see AppendNotifier). Default 2. */
  notifyInFlight?: number
  /**
   * Version races an append may lose to concurrent appends of the same stream before it gives up with
   * `store.unavailable` (retryable). Default 100; each lost race means another append committed.
   */
  maxAppendRaces?: number
}

const DEFAULT_MAX_BATCH = 1000
/** Version races an append may lose before giving up (store.unavailable); EventStoreOptions.maxAppendRaces. */
const MAX_APPEND_RACES = 100
const DEFAULT_BATCH = 500

/**
 * The append-only log on PostgreSQL. Takes a postgres.js client connected as
 * the role the caller is allowed to act as (intent_writer, fact_writer,
 * reader, relay, operator); the database enforces what that role may do.
 */
export class PgEventStore {
  readonly sql: Sql
  readonly #options: EventStoreOptions
  readonly #notifier: AppendNotifier | undefined
  readonly #maxAppendRaces: number

  constructor(sql: Sql, options: EventStoreOptions = {}) {
    this.sql = sql
    this.#options = options
    this.#maxAppendRaces = positive(options.maxAppendRaces ?? MAX_APPEND_RACES, 'maxAppendRaces')
    this.#notifier =
      options.notifyAppends === false ? undefined : new AppendNotifier(sql, undefined, options.notifyInFlight)
  }

  /**
   * Appends `events` to `stream` atomically in one round trip. A retry with
   * the same event ids and content returns the first result; the same ids
   * with other content fail with `IdempotencyConflict`; a lost race fails
   * with `WrongExpectedVersion` when the expectation no longer holds (an
   * append with `any` retries, and gives up after `maxAppendRaces` lost
   * races with `store.unavailable`). Nothing is written when a check fails.
   * Envelopes validated in this process (the EventFactory's, the gateway's
   * stamp, an import's) are trusted, not checked again; anything else that
   * claims to be one (a copy, a cast) is validated here with this store's
   * `maxDataBytes` and `registry`. A stream in a reserved category
   * (`eventplane_…`) takes only envelopes a system writer made in this
   * process (`EventFactory.systemFromEvent`, `asSystemEnvelope`): anything
   * else is refused with `core.invalid_name` and nothing is written.
   */
  async append(
    stream: StreamRef,
    events: readonly ValidEnvelope[],
    options: AppendOptions = {},
  ): Promise<AppendResult> {
    const expected = options.expectedVersion ?? 'any'
    const ref = this.#checkBatch(stream, events, expected)
    try {
      const row = await this.#appendRetryingRaces(ref, expectedCode(expected), events)
      if (!row.replayed) this.#notifier?.poke()
      const txId = BigInt(row.tx_id)
      const appended = events.map((e, i) => ({
        eventId: e.event_id,
        streamVersion: Number(row.stream_versions[i]),
        position: BigInt(row.global_positions[i]!),
        txId,
        recordedAt: row.recorded_at,
      }))
      return {
        nextExpectedVersion: appended.at(-1)!.streamVersion,
        events: appended,
        replayed: row.replayed,
      }
    } catch (e) {
      const pg = e as { code?: string; detail?: string; constraint_name?: string }
      if (pg.code === 'EPWEV')
        throw new WrongExpectedVersion(formatStream(ref), expected, Number(pg.detail), { cause: e })
      // Only a race lost maxAppendRaces times in a row ends here: an exact expectation sees the winner's
      // version on the next attempt (EPWEV). Contention, not a wrong expectation: the caller may retry.
      if (pg.code === '23505' && pg.constraint_name === 'events_stream_version_key') {
        throw new Unavailable(
          'store.unavailable',
          `append to ${formatStream(ref)} lost ${this.#maxAppendRaces} version races in a row to concurrent appends of the stream; retry`,
          { cause: e },
        )
      }
      throw mapPgError(e)
    }
  }

  /**
   * One append call, again when a concurrent append to the same stream
   * committed the versions first, or when the insert met a stored event id
   * (23505: the statement failed as a whole, nothing of it was written). Each
   * version retry sees that append committed, so every retry is progress for
   * someone; the bound is a safety net. Stored ids are probed only on the
   * call after an id collision (migrations/0013): an identical retry with an
   * exact expectation is caught by the version check already.
   */
  async #appendRetryingRaces(ref: StreamRef, expected: number, events: readonly ValidEnvelope[]): Promise<AppendedRow> {
    let idRaces = 0
    for (let attempt = 1; ; attempt++) {
      try {
        return await appendSql(this.sql, ref.tenant, ref.category, ref.id, expected, events, idRaces > 0)
      } catch (e) {
        // A version taken first: the next attempt sees that append committed
        // and classifies. A stored event id: the next attempt probes the ids
        // (identical retry or IdempotencyConflict); the same failure once more
        // is an id stored in another tenant, invisible here: a conflict (mapPgError).
        const pg = e as { code?: string; constraint_name?: string }
        const versionRace = pg.code === '23505' && pg.constraint_name === 'events_stream_version_key'
        const idRace = pg.code === '23505' && pg.constraint_name === 'events_event_id_key' && idRaces++ === 0
        if (!(versionRace || idRace) || attempt >= this.#maxAppendRaces) throw e
      }
    }
  }

  /** A stream's events in batches, forward or backward. */
  async *readStream(stream: StreamRef, options: ReadStreamOptions = {}): AsyncGenerator<RecordedEvent[]> {
    const ref = ensureStreamRef(stream)
    const backward = options.direction === 'backward'
    const batchSize = positive(options.batchSize ?? DEFAULT_BATCH, 'batchSize')
    let remaining = options.maxCount ?? Number.POSITIVE_INFINITY
    let next = options.fromVersion ?? (backward ? Number.MAX_SAFE_INTEGER : 1)
    while (remaining > 0 && next >= 1) {
      options.signal?.throwIfAborted()
      const limit = Math.min(batchSize, remaining)
      const rows = await this.#run(() =>
        readStreamSql(this.sql, ref.tenant, ref.category, ref.id, next, backward, limit),
      )
      if (rows.length === 0) return
      const batch = mapAndRelease(rows, toRecordedEvent)
      yield batch
      remaining -= batch.length
      if (batch.length < limit) return
      next = batch.at(-1)!.stream_version + (backward ? -1 : 1)
    }
  }

  /** Every event of a stream, forward (convenience over `readStream`). */
  async readStreamToArray(stream: StreamRef, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const out: RecordedEvent[] = []
    for await (const batch of this.readStream(stream, options)) out.push(...batch)
    return out
  }

  /**
   * The gap-safe global order after `from`, in batches, until caught up.
   * Events of a transaction still open are held back, never skipped.
   */
  async *readAll(options: ReadAllOptions = {}): AsyncGenerator<RecordedEvent[]> {
    const tenant = options.tenant === undefined ? undefined : validateTenant(options.tenant)
    const batchSize = positive(options.batchSize ?? DEFAULT_BATCH, 'batchSize')
    yield* this.#pages(
      options.from ?? START,
      batchSize,
      options.signal,
      (after) => readAllSql(this.sql, after, batchSize, tenant),
      toRecordedEvent,
    )
  }

  /**
   * readAll for a cross-tenant role (the relay), rows by column name: ids and
   * positions as text, instants as ISO strings, `data` as its JSON text.
   * `horizon` is asked before each page's read (default: the exact horizon;
   * see HorizonRule).
   */
  async *readAllText(
    options: Omit<ReadAllOptions, 'tenant'> & { horizon?: () => HorizonRule } = {},
  ): AsyncGenerator<EventTextRow[]> {
    const batchSize = positive(options.batchSize ?? DEFAULT_BATCH, 'batchSize')
    const horizon = options.horizon ?? (() => 'exact')
    yield* this.#pages(
      options.from ?? START,
      batchSize,
      options.signal,
      (after) => readAllTextSql(this.sql, after, batchSize, horizon()),
      toEventTextRow,
    )
  }

  /** Every event of one correlation chain of one tenant, in log order. */
  async readCorrelation(tenant: string, correlationId: string, limit = 10_000): Promise<RecordedEvent[]> {
    validateTenant(tenant)
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(correlationId)) {
      throw new InvalidEnvelope(`correlation id must be a lowercase UUID, got ${JSON.stringify(correlationId)}`)
    }
    const rows = await this.#run(() => readCorrelationSql(this.sql, tenant, correlationId, limit))
    return mapAndRelease(rows, toRecordedEvent)
  }

  /**
   * The stored events of one tenant among `eventIds`, in log order (an id not stored in the tenant is
   * absent): what a caller that met `store.idempotency_conflict` compares its events with.
   */
  async readEvents(tenant: string, eventIds: readonly string[]): Promise<RecordedEvent[]> {
    validateTenant(tenant)
    if (eventIds.length === 0) return []
    const rows = await this.#run(() => readEventsByIdSql(this.sql, tenant, eventIds))
    return mapAndRelease(rows, toRecordedEvent)
  }

  /**
   * The database's clock (`now()`, the instant `recorded_at` is stamped with), an ISO instant in
   * milliseconds: an event recorded before this call has a `recorded_at` at or before it.
   */
  async now(): Promise<string> {
    const [row] = await this.#run(
      () => this.sql<{ now: string }[]>`select to_json(now() at time zone 'UTC')::text as now`,
    )
    return utcInstant(row!.now, false)
  }

  /**
   * One tenant's events of one category after `from`, in batches, in the
   * gap-safe global order (a transaction still open is held back, never
   * skipped), until caught up. RLS-scoped: any role that may read the tenant.
   */
  async *readCategory(
    tenant: string,
    category: string,
    options: ReadCategoryOptions = {},
  ): AsyncGenerator<RecordedEvent[]> {
    validateTenant(tenant)
    validateCategory(category)
    const batchSize = positive(options.batchSize ?? DEFAULT_BATCH, 'batchSize')
    yield* this.#pages(
      options.from ?? START,
      batchSize,
      options.signal,
      (after) => readCategorySql(this.sql, tenant, category, after, batchSize),
      toRecordedEvent,
    )
  }

  /** One page of a tenant's streams in (category, id) order, each with its last version. */
  async listStreams(tenant: string, options: ListStreamsOptions = {}): Promise<StreamSummary[]> {
    validateTenant(tenant)
    if (options.category !== undefined) validateCategory(options.category)
    if (options.after !== undefined) {
      validateCategory(options.after.category)
      validateStreamId(options.after.id)
    }
    const limit = positive(options.limit ?? 100, 'limit')
    const rows = await this.#run(() =>
      listStreamsSql(
        this.sql,
        tenant,
        options.category ?? null,
        options.after?.category ?? '',
        options.after?.id ?? '',
        limit,
      ),
    )
    return rows.map((r) => ({
      stream: { tenant, category: r.category, id: r.stream_id },
      version: Number(r.stream_version),
      lastType: r.last_type,
      lastRecordedAt: r.last_recorded_at.toISOString(),
    }))
  }

  /**
   * The batch's own checks, and each envelope's unless it was validated in
   * this process. The stream's names are parsed only when `stream` is not a
   * ValidStreamRef nor the stream of the first trusted envelope (both parsed
   * already). Returns the stream reference to append to.
   */
  #checkBatch(stream: StreamRef, events: readonly ValidEnvelope[], expected: ExpectedVersion): StreamRef {
    if (!Array.isArray(events) || events.length === 0) throw new InvalidEnvelope('append needs at least one event')
    const ref = ensureStreamRef(stream, events[0])
    const max = this.#options.maxBatchSize ?? DEFAULT_MAX_BATCH
    if (events.length > max) throw new InvalidEnvelope(`append takes at most ${max} events, got ${events.length}`)
    if (!isExpectedVersion(expected)) throw new InvalidEnvelope(EXPECTED_VERSION_RULE)
    const ids = events.length > 1 ? new Set<string>() : undefined
    const reserved = isReservedCategory(ref.category)
    for (const event of events) {
      // The one check every write passes through: only the system's own envelopes enter its namespace.
      if (reserved && !isSystemEnvelope(event)) refuseReservedCategory(ref.category)
      if (!isValidEnvelope(event)) validateEnvelope(event, this.#options)
      if (event.tenant_id !== ref.tenant) throw new TenantMismatch(ref.tenant, event.tenant_id)
      if (event.stream.category !== ref.category || event.stream.id !== ref.id) {
        throw new StreamMismatch(formatStream(ref), formatStream({ tenant: event.tenant_id, ...event.stream }))
      }
      if (ids === undefined) continue
      if (ids.has(event.event_id)) throw new InvalidEnvelope(`event id ${event.event_id} appears twice in one append`)
      ids.add(event.event_id)
    }
    return ref
  }

  /**
   * Pages of the gap-safe global order after `from` until a short page. The
   * next page's query is sent before a page is handed out (read-ahead), so
   * the database reads while the caller works; each page is gap-safe on its
   * own, so reading ahead changes nothing about what is returned.
   */
  async *#pages<T>(
    from: Checkpoint,
    pageSize: number,
    signal: AbortSignal | undefined,
    fetch: (after: Checkpoint) => Promise<EventValues[]>,
    map: (row: EventValues) => T,
  ): AsyncGenerator<T[]> {
    signal?.throwIfAborted()
    let next = this.#run(() => fetch(from))
    for (;;) {
      const rows = await next
      if (rows.length === 0) return
      const full = rows.length >= pageSize
      if (full) {
        const after = rowKey(rows.at(-1)!)
        next = this.#run(() => fetch(after))
        next.catch(() => {}) // surfaces when awaited; dropped when the caller stops reading
      }
      yield mapAndRelease(rows, map)
      if (!full) return
      signal?.throwIfAborted()
    }
  }

  async #run<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (e) {
      throw mapPgError(e)
    }
  }
}

function rowKey(row: EventValues): Checkpoint {
  return { txId: decimalBigInt(row[1]), position: decimalBigInt(row[0]) }
}

function expectedCode(expected: ExpectedVersion): number {
  if (expected === 'any') return -1
  if (expected === 'no_stream') return 0
  return expected
}

function positive(n: number, name: string): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`${name} must be a positive integer`)
  return n
}
