/**
 * pnpm bench:peer — eventplane's PgEventStore.append against a widely used TypeScript event store on
 * PostgreSQL, Emmett's (`@event-driven-io/emmett-postgresql`, `appendToStream`), with the raw INSERT of
 * bench:store as the floor; the same event data (BENCH_DATA), the same streams per writer, the same writers,
 * no expected version on either side. Each side has its own fresh database on the same server (dropped at
 * the end) and a pool of the same size; rounds alternate the three sides in a rotating order and the table
 * gives the median of the per-round ratios, with CPU per event of this process (process.cpuUsage) and of the
 * side's backends (/proc/<pid>/schedstat, found by application_name).
 *
 * The peer is not a dependency: peer-install.ts installs its pinned version into a cache directory outside
 * the repository on first use. Options: --rounds 5 --single-ops 1500 --batch-ops 150 --writers 1,8,32 (none: batches only)
 * --pool 16 --notify off (ours without its coalesced post-commit NOTIFY, to see what it costs).
 */
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { EventFactory } from '@eventplane/core'
import { PgEventStore, ROLES, type Sql, connectPg } from '@eventplane/store-pg'
import { countLogEvents } from '@eventplane/store-pg/testing'
import {
  BENCH_DATA,
  type Measurement,
  argList,
  argString,
  argValue,
  backendCpuNs,
  createRawEventsTable,
  measure,
  median,
  percentile,
  printTable,
  rawInsertOne,
  rate,
  benchDatabase,
} from './lib.ts'
import { PEER_VERSION, loadPeer } from './peer-install.ts'

const ROUNDS = argValue('rounds', 5)
const SINGLE_OPS = argValue('single-ops', 1500)
const BATCH_OPS = argValue('batch-ops', 150)
const WRITERS = argList('writers', [1, 8, 32]).filter(Number.isFinite)
const NOTIFY = argString('notify', 'on') !== 'off'
/**
 * Connections of each side's pool. Three sides of 32 would take 96 of the server's 100 slots (other
 * benchmarks and suites share it), so 32 writers queue for 16 connections on every side alike.
 */
const POOL = argValue('pool', 16)
/** Streams each writer appends to, round-robin (bench:store's writers × 4; a writer owns its streams). */
const STREAMS_PER_WRITER = 4

const SIDES = ['raw', 'peer', 'ours'] as const
type Side = (typeof SIDES)[number]
interface SideRun extends Measurement {
  backendMs: number
}
type Op = (i: number, loop: number) => Promise<unknown>

const peer = loadPeer()
const db = await benchDatabase('peer_ours')
const peerDb = await benchDatabase('peer_emmett', { migrate: false })
const pools: Sql[] = []
const peerPools: { end(): Promise<void> }[] = []
try {
  const poolSize = POOL
  const app = (side: Side) => `bench_peer_${process.pid}_${side}`
  const pool = (url: string, side: Side) => {
    const sql = connectPg(url, { max: poolSize, applicationName: app(side) })
    pools.push(sql)
    return sql
  }
  await createRawEventsTable(db.admin)
  const raw = pool(db.url, 'raw')
  const ours = new PgEventStore(pool(db.roleUrl(ROLES.intentWriter), 'ours'), { notifyAppends: NOTIFY })
  const factory = EventFactory.forTenant('bench', { causedBy: 'user:bench' })
  const opened = peer.open(peerDb.url, poolSize, app('peer'))
  peerPools.push(opened.pool)
  const emmett = opened.store
  await emmett.schema.migrate()
  const appended: Record<Side, number> = { raw: 0, peer: 0, ours: 0 }
  let round = 0

  /** CPU (ns) so far of each backend of `side`'s pool. */
  const backendTimes = async (side: Side): Promise<Map<number, number>> => {
    const times = new Map<number, number>()
    for (const { pid } of await db.admin<{ pid: number }[]>`
        select pid from pg_stat_activity where application_name = ${app(side)}`) {
      try {
        times.set(pid, backendCpuNs(pid))
      } catch {
        // the connection closed in between: its CPU is lost to this measurement
      }
    }
    return times
  }
  const run = async (side: Side, ops: number, writers: number, events: number, op: Op): Promise<SideRun> => {
    const before = await backendTimes(side)
    const m = await measure(ops, writers, events, op)
    let ns = 0
    for (const [pid, t] of await backendTimes(side)) ns += t - (before.get(pid) ?? 0)
    appended[side] += m.events
    return { ...m, backendMs: ns / 1e6 }
  }

  const rawBatch = (n: number) => {
    const ids = Array.from({ length: n }, () => randomUUID())
    const data = ids.map(() => JSON.stringify(BENCH_DATA))
    return raw`insert into raw_events (event_id, tenant_id, kind, category, stream_id, stream_version, type,
        schema_version, data, correlation_id, causation_id, caused_by, occurred_at)
      select u.id, 'bench', 'intent', 'deployment', 'raw', 1, 'created', 1, u.data::jsonb, u.id, null, 'user:bench', now()
        from unnest(${ids}::uuid[], ${data}::text[]) as u(id, data)`
  }
  const oursAppend = (id: string, n: number) => {
    const s = { tenant: 'bench', category: 'deployment', id }
    return ours.append(
      s,
      Array.from({ length: n }, () => factory.intent(s, 'created', BENCH_DATA)),
    )
  }
  const peerAppend = (id: string, n: number) =>
    emmett.appendToStream(
      `deployment-${id}`,
      Array.from({ length: n }, () => ({ type: 'created', data: BENCH_DATA })),
    )

  /** One workload: a warm-up of each side, then `ROUNDS` rounds of all three in a rotating order. */
  const compare3 = async (name: string, ops: number, writers: number, events: number, sides: Record<Side, Op>) => {
    const load = [loadavg()[0]!]
    const runs: Record<Side, SideRun[]> = { raw: [], peer: [], ours: [] }
    for (const side of SIDES) await run(side, Math.min(ops, writers * 20), writers, events, sides[side])
    for (let r = 0; r < ROUNDS; r++) {
      for (let k = 0; k < SIDES.length; k++) {
        const side = SIDES[(r + k) % SIDES.length]!
        round++
        runs[side].push(await run(side, ops, writers, events, sides[side]))
      }
      const ratio = (a: Side, b: Side) => (rate(runs[a].at(-1)!) / rate(runs[b].at(-1)!)).toFixed(2)
      process.stderr.write(
        `  ${name}: round ${r + 1}/${ROUNDS} ours÷peer ${ratio('ours', 'peer')} ours÷raw ${ratio('ours', 'raw')}\n`,
      )
    }
    load.push(loadavg()[0]!)
    return summarize(name, runs, load)
  }

  const rows = []
  for (const writers of WRITERS) {
    const stream = (i: number, loop: number) => `r${round}w${loop}s${i % STREAMS_PER_WRITER}`
    rows.push(
      await compare3(`append 1 event, ${writers} writer(s)`, SINGLE_OPS, writers, 1, {
        raw: () => rawInsertOne(raw),
        peer: (i, loop) => peerAppend(stream(i, loop), 1),
        ours: (i, loop) => oursAppend(stream(i, loop), 1),
      }),
    )
  }
  rows.push(
    await compare3('append 100 events, 1 writer', BATCH_OPS, 1, 100, {
      raw: () => rawBatch(100),
      peer: (i) => peerAppend(`b${round}n${i}`, 100),
      ours: (i) => oursAppend(`b${round}n${i}`, 100),
    }),
  )

  // Every append the table counts was stored, on both sides.
  const stored = {
    raw: Number((await db.admin<{ n: string }[]>`select count(*) as n from raw_events`)[0]!.n),
    peer: Number((await peerDb.admin<{ n: string }[]>`select count(*) as n from emt_messages`)[0]!.n),
    ours: await countLogEvents(db.admin),
  }
  for (const side of SIDES)
    if (stored[side] !== appended[side])
      throw new Error(`${side}: ${stored[side]} events stored, ${appended[side]} appended`)

  // store-pg owns postgres.js (the root no longer depends on it)
  const postgresJs = JSON.parse(
    readFileSync(new URL('../../packages/store-pg/node_modules/postgres/package.json', import.meta.url), 'utf8'),
  )
  console.log(
    `\nbench:peer on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${ROUNDS} rounds (median of per-round ratios),` +
      ` PostgreSQL ${(await db.admin`show server_version`)[0]!.server_version}, Node ${process.version},` +
      ` postgres.js ${postgresJs.version}; peer ${Object.entries(peer.versions)
        .map(([n, v]) => `${n}@${v}`)
        .join(', ')} (pinned ${PEER_VERSION}); ours ${NOTIFY ? 'with' : 'without'} its post-commit NOTIFY;` +
      ` pools of ${poolSize}; events stored: raw ${stored.raw}, peer ${stored.peer}, ours ${stored.ours}`,
  )
  printTable(rows)
} finally {
  await Promise.all([...pools.map((p) => p.end({ timeout: 1 })), ...peerPools.map((p) => p.end())])
  await Promise.all([db.drop(), peerDb.drop()])
}

function summarize(name: string, runs: Record<Side, SideRun[]>, load: number[]) {
  const ratios = (a: Side, b: Side) => runs[a].map((m, i) => rate(m) / rate(runs[b][i]!))
  const ratio = (a: Side, b: Side) => {
    const rs = ratios(a, b)
    return `${median(rs).toFixed(2)} (${Math.min(...rs).toFixed(2)}–${Math.max(...rs).toFixed(2)})`
  }
  const each = (f: (m: SideRun) => number, digits = 0) =>
    SIDES.map((s) => median(runs[s].map(f)).toFixed(digits)).join(' / ')
  return {
    benchmark: name,
    'raw ev/s': Math.round(median(runs.raw.map(rate))),
    'peer ev/s': Math.round(median(runs.peer.map(rate))),
    'ours ev/s': Math.round(median(runs.ours.map(rate))),
    'ours ÷ peer': ratio('ours', 'peer'),
    'ours ÷ raw': +median(ratios('ours', 'raw')).toFixed(2),
    'peer ÷ raw': +median(ratios('peer', 'raw')).toFixed(2),
    'p99 ms raw/peer/ours': each((m) => percentile(m.latenciesMs, 99), 1),
    'client µs/ev raw/peer/ours': each((m) => ((m.cpuMs ?? Number.NaN) * 1000) / m.events),
    'backend µs/ev raw/peer/ours': each((m) => (m.backendMs * 1000) / m.events),
    load: load.map((l) => l.toFixed(1)).join('→'),
  }
}
