import type postgres from 'postgres'
import type { Sql } from 'postgres'

// Raw access to the log for benchmark baselines and bulk loads, as the
// superuser (no RLS, no append function): what a hand-rolled outbox would do,
// so benchmarks can compare the store against it. Never for application code.

/** Inserts `ids.length` intents into `stream` (versions after+1..after+n) with one raw INSERT into eventplane.events. */
export function insertRawEvents(
  admin: Sql,
  stream: string,
  ids: readonly string[],
  data: object,
  after = 0,
): Promise<unknown> {
  return admin`insert into eventplane.events (event_id, tenant_id, kind, category, stream_id, stream_version, type,
      schema_version, data, correlation_id, causation_id, caused_by, occurred_at)
    select u.id, 'bench', 'intent', 'deployment', ${stream}, ${after}::bigint + u.v, 'created', 1,
           ${admin.json(data as postgres.JSONValue)},
           u.id, null, 'user:bench', now()
      from unnest(${ids as string[]}::uuid[]) with ordinality as u(id, v)`
}

/**
 * Loads events `from..to` (positions of a generate_series) as intents of ten
 * tenants over `streams` streams, in one INSERT … SELECT: a fast bulk load.
 * The chain trigger hashes each row, so the hash chain stays valid.
 * `timeOrderedIds`: event ids shaped like the UUIDv7s an EventFactory makes
 * (increasing with `g`, version 7) instead of random ones, so the event_id
 * index grows at its right edge as it does in production (random ids split
 * pages anywhere and leave it ~40% larger); measuring storage needs this.
 * `placeholderHash`: every row is stored with this 32-byte hash instead (the
 * trigger fires only for rows without one), ~40 % less server CPU per row
 * (the chain link is ~10 of 25 µs, measured). The loaded events' chains then
 * do NOT verify: for benchmarks that measure the log's size, never for
 * anything that reads the chain. Events appended later chain normally (from
 * that hash on a loaded stream, from the genesis on a new one).
 * `into`: the same rows into another table with the log's event columns and
 * no `hash` (a benchmark's raw baseline) instead of the log.
 */
export function bulkLoadEvents(
  admin: Sql,
  from: number,
  to: number,
  streams: number,
  options: { timeOrderedIds?: boolean; placeholderHash?: Uint8Array; into?: string } = {},
): Promise<unknown> {
  if (options.placeholderHash !== undefined && options.placeholderHash.length !== 32) {
    throw new RangeError('a placeholder hash is 32 bytes')
  }
  const id = options.timeOrderedIds
    ? // 48-bit "milliseconds" (now + g: above every id written so far, as new UUIDv7s are), version 7,
      // variant 8, the rest from md5(g). A fixed past instant would land every id left of the newer ones
      // already stored, where ascending inserts split pages half-full (measured: 55 bytes an event, not 25).
      admin`(lpad(to_hex(${Date.now()}::bigint + g), 12, '0') || '7' || substr(md5(g::text), 1, 3) || '8'
             || substr(md5(g::text), 4, 15))::uuid`
    : admin`gen_random_uuid()`
  // Stream and version follow from g, so (tenant, category, stream, version) is unique.
  const table = options.into === undefined ? admin`eventplane.events` : admin(options.into)
  const hash = options.into === undefined && options.placeholderHash !== undefined
  return admin`
    insert into ${table} (event_id, tenant_id, kind, category, stream_id, stream_version, type,
      schema_version, data, correlation_id, causation_id, caused_by, occurred_at${hash ? admin`, hash` : admin``})
    select u, 'tenant' || (g % 10), 'intent', 'deployment', 'd' || (g % ${streams}), g / ${streams} + 1, 'scaled',
           1, jsonb_build_object('replicas', g % 7, 'image', 'nginx:1.27'), u, null, 'user:bench', now()
           ${hash ? admin`, ${Buffer.from(options.placeholderHash!)}::bytea` : admin``}
      from (select g, ${id} as u from generate_series(${from}::bigint, ${to}::bigint) g) x`
}

/** How many events the log holds. */
export async function countLogEvents(admin: Sql): Promise<number> {
  const [row] = await admin<{ n: number }[]>`select count(*)::int as n from eventplane.events`
  return row!.n
}

/** VACUUM ANALYZE of the log table, so a benchmark starts from fresh statistics. */
export async function vacuumLog(admin: Sql): Promise<void> {
  await admin`vacuum analyze eventplane.events`
}

/**
 * The first `limit` events in the global order through a cursor of
 * `batchRows`, as one plain SELECT, handing each batch to `onRows`: the raw
 * baseline a benchmark compares `readAll` against. Resolves with the number
 * of rows read.
 */
export async function readRawLog(
  sql: Sql,
  batchRows: number,
  limit: number,
  onRows: (rows: readonly unknown[]) => void,
): Promise<number> {
  let count = 0
  await sql`select * from eventplane.events order by tx_id, global_position limit ${limit}`.cursor(
    batchRows,
    (rows) => {
      count += rows.length
      onRows(rows)
    },
  )
  return count
}

/**
 * Every event the gap-safe read would return, in the global order, as batches
 * of `batchRows` from a cursor: the raw ordered read a rebuild is compared with.
 */
export function rawGapSafeLog(sql: Sql, batchRows: number): AsyncIterable<unknown[]> {
  return sql`select * from eventplane.events where tx_id < eventplane.log_horizon(pg_current_snapshot())
              order by tx_id, global_position`.cursor(batchRows)
}
