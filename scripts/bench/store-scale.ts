/**
 * pnpm bench:scale — does the store stay flat as the log grows (issue 15)?
 *
 *   pnpm bench:scale [--rounds 3] [--ops 1000] [--writers 1,8] [--big] [--sizes 0,1000000]
 *
 * (a) Appends of one event, ours (PgEventStore.append) and raw (autocommit INSERT into a plain table holding
 *     the same number of rows), with the log already holding 0 and 1M events (and 10M with `--big`): events/s,
 *     p99, and the backend's CPU per append (/proc/<pid>/schedstat, 1 writer: insensitive to a loaded
 *     machine). Target: each size costs at most 1.2× the empty log's.
 * (b) readStream of streams of 10, 1,000 and 100,000 events vs a raw SELECT of the same rows.
 * (c) Storage bytes per event of eventplane.events (table + toast + indexes) vs a table with the same columns
 *     and only a primary key, the same rows in both. Target ≤ 1.3×; each index's share is printed.
 *
 * The log is filled as the superuser by set-based INSERT … SELECT generate_series (bulkLoadEvents, 100,000 events
 * a statement, 10 tenants, 10,000 streams: ~100 events a stream at 1M, ~1,000 at 10M), the path a bulk import
 * takes, with the raw table filled with the same rows on a second connection at the same time. The filled events
 * carry a PLACEHOLDER hash (FILL_HASH, the same for every row) instead of the chain trigger's: the trigger's
 * hash is ~40 % of the fill's server CPU (the 10M fill took 10+ minutes with it), the hash column has the same
 * size either way, and no index holds it. So the filled streams' chains do NOT verify (`evtctl verify` would
 * report every one); the events the benchmark appends on top (new streams of tenant `bench`) chain normally,
 * which the end of the run checks. Indexes are never dropped: each index grows row by row as it would.
 * Raw and ours alternate in every round; ratios are medians of the per-round ratios (lib.ts).
 */
import { createHash, randomUUID } from 'node:crypto'
import { EventFactory } from '@eventplane/core'
import { PgEventStore, ROLES, type Sql } from '@eventplane/store-pg'
import { bulkLoadEvents, countLogEvents, insertRawEvents, vacuumLog } from '@eventplane/store-pg/testing'
import {
  BENCH_DATA,
  type Measurement,
  argList,
  argValue,
  backendCpuNs,
  backendPid,
  compare,
  createRawEventsTable,
  measure,
  median,
  percentile,
  printTable,
  rate,
  rawInsertOne,
  summarize,
  benchDatabase,
} from './lib.ts'

const ROUNDS = argValue('rounds', 3)
const OPS = argValue('ops', 1000)
const WRITERS = argList('writers', [1, 8])
const BIG = process.argv.includes('--big')
const SIZES = argList('sizes', BIG ? [0, 1_000_000, 10_000_000] : [0, 1_000_000])
const STREAM_SIZES = argList('stream-sizes', [10, 1000, 100_000])
/** Events read per readStream measurement (so a short stream is read many times). */
const READ_EVENTS = argValue('read-events', 100_000)
const FLAT_TARGET = 1.2
const STORAGE_TARGET = 1.3
const FILL_CHUNK = 100_000
const FILL_STREAMS = 10_000
/** The hash every filled event carries (see the header): not a chain link. */
const FILL_HASH = createHash('sha256').update('eventplane bench:scale fill placeholder').digest()

/** Events written by bulkLoadEvents so far (the series continues from here). */
let bulkLoaded = 0
/** How long each fill took (s): the rows (log and raw together), then their VACUUM ANALYZE. */
const fills: { size: number; events: number; rowsS: number; vacuumS: number }[] = []
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')

const db = await benchDatabase('scale')
try {
  const poolSize = Math.max(8, ...WRITERS)
  const admin = db.connect('postgres' as never, poolSize)
  await createRawEventsTable(db.admin)
  const factory = EventFactory.forTenant('bench', { causedBy: 'user:bench' })
  let round = 0
  const oursAppend = (store: PgEventStore, writers: number) => (i: number) => {
    const s = { tenant: 'bench', category: 'deployment', id: `s${round}-${i % (writers * 4)}` }
    return store.append(s, [factory.intent(s, 'created', BENCH_DATA)])
  }

  // One connection each for the 1-writer rows, so one backend's CPU is all the statement's work.
  const rawOne = db.connect('postgres' as never, 1)
  const oursOne = new PgEventStore(db.connect(ROLES.intentWriter, 1))
  const oursPool = new PgEventStore(db.connect(ROLES.intentWriter, poolSize))
  const cpuRaw: Record<number, number[]> = {}
  const cpuOurs: Record<number, number[]> = {}
  /** Runs `op` OPS times on one connection; records the backend's CPU µs per op in `into`. */
  const withBackendCpu = async (sql: Sql, into: number[], op: (i: number) => Promise<unknown>) => {
    const pid = await backendPid(sql)
    const before = backendCpuNs(pid)
    const m = await measure(OPS, 1, 1, op)
    if ((await backendPid(sql)) === pid) into.push((backendCpuNs(pid) - before) / 1000 / OPS)
    return m
  }

  const appendRows: Record<string, string | number | boolean>[] = []
  const bySize = new Map<number, Map<number, { raw: number; ours: number; rawP99: number; oursP99: number }>>()
  for (const size of SIZES) {
    await fillTo(admin, size)
    // Every size is measured from the same state: a fill writes GBs of WAL, and a checkpoint it started would
    // still be writing during the next measurement (each under a second), which touches more pages for ours.
    await admin`checkpoint`
    cpuRaw[size] = []
    cpuOurs[size] = []
    const perWriters = new Map<number, { raw: number; ours: number; rawP99: number; oursP99: number }>()
    for (const writers of WRITERS) {
      const c = await compare(
        `append 1 event, ${writers} writer(s), log ${fmt(size)}`,
        0.8,
        ROUNDS,
        () =>
          writers === 1
            ? withBackendCpu(rawOne, cpuRaw[size]!, () => rawInsertOne(rawOne))
            : measure(OPS, writers, 1, () => rawInsertOne(admin)),
        () => {
          round++
          return writers === 1
            ? withBackendCpu(oursOne.sql, cpuOurs[size]!, oursAppend(oursOne, 1))
            : measure(OPS, writers, 1, oursAppend(oursPool, writers))
        },
      )
      appendRows.push(summarize(c))
      const p99 = (ms: Measurement[]) => median(ms.map((m) => percentile(m.latenciesMs, 99)))
      perWriters.set(writers, {
        raw: median(c.raw.map(rate)),
        ours: median(c.ours.map(rate)),
        rawP99: p99(c.raw),
        oursP99: p99(c.ours),
      })
    }
    bySize.set(size, perWriters)
  }

  const flatRows: Record<string, string | number | boolean>[] = []
  const empty = bySize.get(SIZES[0]!)!
  for (const size of SIZES) {
    for (const writers of WRITERS) {
      const at = bySize.get(size)!.get(writers)!
      const base = empty.get(writers)!
      const oursCost = base.ours / at.ours
      const oursP99 = at.oursP99 / base.oursP99
      const cpu = writers === 1 ? median(cpuOurs[size]!) / median(cpuOurs[SIZES[0]!]!) : Number.NaN
      flatRows.push({
        log: fmt(size),
        writers,
        'ours time/append ÷ empty': +oursCost.toFixed(2),
        'ours p99 ÷ empty': +oursP99.toFixed(2),
        'ours backend CPU ÷ empty': Number.isNaN(cpu) ? '–' : +cpu.toFixed(2),
        'raw time/append ÷ empty': +(base.raw / at.raw).toFixed(2),
        'raw p99 ÷ empty': +(at.rawP99 / base.rawP99).toFixed(2),
        'ours backend µs': writers === 1 ? +median(cpuOurs[size]!).toFixed(0) : '–',
        'raw backend µs': writers === 1 ? +median(cpuRaw[size]!).toFixed(0) : '–',
        target: `≤ ${FLAT_TARGET}`,
        meets: Math.max(oursCost, oursP99, Number.isNaN(cpu) ? 0 : cpu) <= FLAT_TARGET,
      })
    }
  }

  const readRows = await readStreams(admin)
  const storageStart = performance.now()
  const storage = await storageCost(admin)
  process.stderr.write(`storage copy and sizes: ${((performance.now() - storageStart) / 1000).toFixed(0)} s\n`)
  const chain = await chainOnTop(admin)

  const version = (await db.admin`show server_version`)[0]!.server_version
  console.log(
    `\nbench:scale on ${new Date().toISOString().slice(0, 10)}, PostgreSQL ${version}, ${ROUNDS} rounds, ${OPS} appends per measurement`,
  )
  console.log('\n(a) appends as the log grows: ours ÷ raw at each size')
  printTable(appendRows)
  console.log('\n(a) the same, each size ÷ the empty log (flat means ≤ 1.2)')
  printTable(flatRows)
  console.log('\n(b) readStream vs a raw SELECT of the same rows')
  printTable(readRows)
  console.log('\n(c) storage per event')
  printTable(storage.rows)
  console.log(storage.note)
  console.log(
    `\nfills (log and raw rows together, then VACUUM ANALYZE of both): ${fills
      .map((f) => `to ${fmt(f.size)}: ${fmt(f.events)} events in ${f.rowsS.toFixed(0)} s + ${f.vacuumS.toFixed(0)} s`)
      .join('; ')}`,
  )
  console.log(chain)
} finally {
  await db.drop()
}

/** Fills the log up to `size` events (plus whatever the benchmark appended), and raw_events to as many rows. */
async function fillTo(admin: Sql, size: number): Promise<void> {
  const have = await countLogEvents(admin)
  const t = performance.now()
  if (have < size) {
    process.stderr.write(`filling the log to ${fmt(size)} events…`)
    // bulkLoadEvents derives stream and version from the series number: continue it where the last fill ended.
    const start = bulkLoaded + 1
    const end = start + (size - have) - 1
    for (let from = start; from <= end; from += FILL_CHUNK) {
      const to = Math.min(end, from + FILL_CHUNK - 1)
      // The raw table gets the same rows on another connection of the pool, at the same time (two cores).
      await Promise.all([
        bulkLoadEvents(admin, from, to, FILL_STREAMS, { timeOrderedIds: true, placeholderHash: FILL_HASH }),
        bulkLoadEvents(admin, from, to, FILL_STREAMS, { timeOrderedIds: true, into: 'raw_events' }),
      ])
      process.stderr.write('.')
    }
    bulkLoaded = end
    process.stderr.write(` ${((performance.now() - t) / 1000).toFixed(0)} s\n`)
  }
  const [raw] = await admin<{ n: number }[]>`select count(*)::int as n from raw_events`
  const missing = (await countLogEvents(admin)) - raw!.n
  if (missing > 0) {
    // The raw table holds as many rows as the log, so both appends meet indexes of the same depth.
    await admin`insert into raw_events (event_id, tenant_id, kind, category, stream_id, stream_version, type,
        schema_version, data, correlation_id, causation_id, caused_by, occurred_at)
      select event_id, tenant_id, kind, category, stream_id, stream_version, type, schema_version, data,
             correlation_id, causation_id, caused_by, occurred_at
        from eventplane.events order by global_position limit ${missing}`
  }
  if (have < size || missing > 0) {
    const rowsS = (performance.now() - t) / 1000
    const v = performance.now()
    // Not on the empty log: a new deployment's log was never vacuumed, and the planner treats an analyzed empty
    // table (zero pages on record) differently from an unanalyzed one.
    await Promise.all([vacuumLog(admin), admin`vacuum analyze raw_events`])
    fills.push({ size, events: size - have, rowsS, vacuumS: (performance.now() - v) / 1000 })
  }
}

/** (b): readStream of streams of each length vs `select *` of the same rows, as many events per measurement. */
async function readStreams(admin: Sql): Promise<Record<string, string | number | boolean>[]> {
  const reader = new PgEventStore(db.connect(ROLES.reader, 1))
  const rows: Record<string, string | number | boolean>[] = []
  for (const length of STREAM_SIZES) {
    const id = `read-${length}`
    for (let v = 0; v < length; v += 10_000) {
      const ids = Array.from({ length: Math.min(10_000, length - v) }, () => randomUUID())
      await insertRawEvents(admin, id, ids, { image: 'registry.example/web:1.2.3', replicas: 3 }, v)
    }
    await vacuumLog(admin)
    const ops = Math.max(2, Math.ceil(READ_EVENTS / length))
    const c = await compare(
      `readStream of ${fmt(length)} events`,
      0.8,
      ROUNDS,
      () =>
        measure(ops, 1, length, async () => {
          const got = await admin`select * from eventplane.events
            where tenant_id = 'bench' and category = 'deployment' and stream_id = ${id} order by stream_version`
          if (got.length !== length) throw new Error(`raw read ${got.length} of ${length}`)
        }),
      () =>
        measure(ops, 1, length, async () => {
          const got = await reader.readStreamToArray({ tenant: 'bench', category: 'deployment', id })
          if (got.length !== length) throw new Error(`readStream read ${got.length} of ${length}`)
        }),
    )
    rows.push(summarize(c))
  }
  return rows
}

/** (c): bytes per event of the log (heap, toast, each index) vs the same rows in a table with a primary key only. */
async function storageCost(admin: Sql): Promise<{ rows: Record<string, string | number | boolean>[]; note: string }> {
  await admin`create table raw_storage (like eventplane.events including defaults)`
  // The rows in the heap's order, then the primary key built: the same bytes as a key receiving its rows in log
  // order (22.49 bytes an event both ways at 1M, measured; rightmost splits leave pages as full as a build), at
  // half the time of sorting the log. Inserting in the heap's order into the key would not do: appends after a
  // VACUUM fill earlier pages' free space, so that order is not the log's, and the key's pages split half-full
  // (40 bytes an event).
  await admin`insert into raw_storage select * from eventplane.events`
  await admin`alter table raw_storage add primary key (global_position)`
  await admin`vacuum analyze raw_storage`
  await vacuumLog(admin)
  const events = await countLogEvents(admin)
  type Part = { name: string; bytes: string }
  const parts = async (table: string): Promise<Part[]> => {
    const rel = (await admin<{ rel: number }[]>`select ${table}::regclass::oid::int as rel`)[0]!.rel
    return admin<Part[]>`
      select 'table (heap)' as name, pg_relation_size(${rel})::text as bytes
      union all select 'toast', (pg_total_relation_size(${rel}) - pg_relation_size(${rel}) - pg_indexes_size(${rel}))::text
      union all (select 'index ' || c.relname, pg_relation_size(c.oid)::text
                   from pg_index i join pg_class c on c.oid = i.indexrelid
                  where i.indrelid = ${rel} order by pg_relation_size(c.oid) desc)
      union all select 'total', pg_total_relation_size(${rel})::text`
  }
  const ours = await parts('eventplane.events')
  const raw = await parts('raw_storage')
  const perEvent = (p: Part) => Number(p.bytes) / events
  const total = (ps: Part[]) => perEvent(ps.find((p) => p.name === 'total')!)
  const ratio = total(ours) / total(raw)
  const rows = [
    ...ours.map((p) => ({
      relation: `ours: ${p.name}`,
      'bytes/event': +perEvent(p).toFixed(1),
      MB: +(Number(p.bytes) / 2 ** 20).toFixed(1),
    })),
    ...raw.map((p) => ({
      relation: `raw: ${p.name}`,
      'bytes/event': +perEvent(p).toFixed(1),
      MB: +(Number(p.bytes) / 2 ** 20).toFixed(1),
    })),
  ]
  const [payload] = await admin<{ b: number }[]>`select avg(pg_column_size(data))::int as b from eventplane.events`
  const note =
    `${fmt(events)} events (data ~${payload!.b} bytes each): ours ${total(ours).toFixed(0)} bytes/event, raw ` +
    `${total(raw).toFixed(0)}, ratio ${ratio.toFixed(2)} (target ≤ ${STORAGE_TARGET}) ${ratio <= STORAGE_TARGET ? 'ok' : 'MISSED'}` +
    (ratio > STORAGE_TARGET
      ? `; beyond the raw table's heap and primary key, ours carries: ${ours
          .filter((p) => p.name.startsWith('index '))
          .map((p) => `${p.name.slice(6)} ${perEvent(p).toFixed(0)} B`)
          .join(', ')}`
      : '')
  return { rows, note }
}

/**
 * The events of tenant `bench` (every append measured, the read streams) recomputed link by link from the stored
 * hashes: the placeholder hash of the fill must not reach them.
 */
async function chainOnTop(admin: Sql): Promise<string> {
  const [row] = await admin<{ n: number; bad: number }[]>`
    select count(*)::int as n,
           count(*) filter (where e.hash is distinct from eventplane.chain_link(p.hash, e))::int as bad
      from eventplane.events e
      left join eventplane.events p on p.tenant_id = e.tenant_id and p.category = e.category
                                   and p.stream_id = e.stream_id and p.stream_version = e.stream_version - 1
     where e.tenant_id = 'bench'`
  if (row!.bad > 0) throw new Error(`${row!.bad} of ${row!.n} events appended on top of the fill do not chain`)
  return `chain of the ${fmt(row!.n)} events written on top of the fill (tenant bench): every link recomputes`
}
