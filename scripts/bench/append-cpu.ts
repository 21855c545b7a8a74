/**
 * pnpm tsx scripts/bench/append-cpu.ts [--ops 500] [--rounds 5] [--only ours] — CPU per one-event append,
 * this process's (process.cpuUsage) and the backend's (/proc/<pid>/schedstat), raw INSERT of one row vs
 * PgEventStore.append of one event to an existing stream (four streams per round, as bench:store's 1 writer),
 * alternating rounds, medians. The envelopes are made before each timed loop: the client column is the
 * append's own work. `--only ours` runs just the appends; `--profile file.cpuprofile` records this process's
 * CPU profile over the timed loops of the appends only (summarise with cpuprofile-summary.ts).
 * `--before 15` adds a third row, the same appends to a second database migrated only up to 0014, in the
 * same alternating rounds: a migration's effect measured within one run.
 * `--paths` adds two rows on the same database and role: one event through the array entry point (`appendSql`,
 * as `PgEventStore.append` calls it) and through the prototype one-event entry point with scalar parameters
 * (append-one-prototype.sql, applied to the scratch database; `appendOnePrototype` below), on one
 * connection in interleaved blocks of `--block` (default 25) calls, the order swapped every block, so drift in
 * the machine's load falls on both alike; the rounds' paired ratios are printed too.
 */
import { type EventEnvelope, EventFactory, type ValidEnvelope } from '@eventplane/core'
import { type JSONValue, MIGRATIONS_DIR, PgEventStore, ROLES, type Sql, migrate } from '@eventplane/store-pg'
import type { TestDatabase } from '@eventplane/store-pg/testing'
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises'
import { readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Session } from 'node:inspector/promises'
import { appendSql } from '../../packages/store-pg/src/sql/append.ts'
import {
  BENCH_DATA,
  argString,
  argValue,
  backendCpuNs,
  backendPid,
  createRawEventsTable,
  median,
  rawInsertOne,
  benchDatabase,
} from './lib.ts'

const OPS = argValue('ops', 500)
const ROUNDS = argValue('rounds', 5)
const only = argString('only')
const profile = argString('profile')
const beforeArg = argString('before')
const before = beforeArg === undefined ? undefined : Number(beforeArg)
const paths = process.argv.includes('--paths')
const BLOCK = argValue('block', 25)

interface Cpu {
  server: number
  client: number
}

/** A database migrated with the migrations numbered below `version` only. */
async function databaseBefore(version: number): Promise<TestDatabase> {
  const dir = await mkdtemp(join(tmpdir(), 'ep-migrations-'))
  try {
    for (const f of await readdir(MIGRATIONS_DIR))
      if (Number(f.slice(0, 4)) < version) await cp(join(MIGRATIONS_DIR, f), join(dir, f))
    const older = await benchDatabase('append_cpu_before', { migrate: false })
    await migrate(older.admin, { dir })
    return older
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const db = await benchDatabase('append_cpu')
const older = before === undefined ? undefined : await databaseBefore(before)
try {
  const raw = db.connect('postgres' as never, 1)
  const ours = db.connect(ROLES.intentWriter, 1)
  await createRawEventsTable(db.admin)
  const store = new PgEventStore(ours, { notifyAppends: false })
  const oldSql = older?.connect(ROLES.intentWriter, 1)
  const oldStore = oldSql && new PgEventStore(oldSql, { notifyAppends: false })
  const factory = EventFactory.forTenant('bench', { causedBy: 'user:bench' })
  const session = profile === undefined ? undefined : new Session()
  if (session) {
    session.connect()
    await session.post('Profiler.enable')
  }
  const run = async (sql: Sql, op: (i: number) => Promise<unknown>, profiled = false): Promise<Cpu> => {
    const p = await backendPid(sql)
    if (profiled) await session?.post('Profiler.start')
    const s = backendCpuNs(p)
    const c = process.cpuUsage()
    for (let i = 0; i < OPS; i++) await op(i)
    const cu = process.cpuUsage(c)
    if (profiled && session) profiles.push((await session.post('Profiler.stop')).profile)
    const server = (backendCpuNs(p) - s) / 1000 / OPS
    if ((await backendPid(sql)) !== p) throw new Error('the backend changed during a round')
    return { server, client: (cu.user + cu.system) / OPS }
  }
  /** Two ops on one connection in alternating blocks (ABBA…), CPU per op of each. */
  const interleaved = async (sql: Sql, a: (i: number) => Promise<unknown>, b: (i: number) => Promise<unknown>) => {
    const p = await backendPid(sql)
    const sum = [
      { server: 0, client: 0 },
      { server: 0, client: 0 },
    ]
    for (let from = 0, block = 0; from < OPS; from += BLOCK, block++) {
      for (const which of block % 2 === 0 ? [0, 1] : [1, 0]) {
        const op = which === 0 ? a : b
        const s = backendCpuNs(p)
        const c = process.cpuUsage()
        for (let i = from; i < Math.min(from + BLOCK, OPS); i++) await op(i)
        const cu = process.cpuUsage(c)
        sum[which]!.server += (backendCpuNs(p) - s) / 1000
        sum[which]!.client += cu.user + cu.system
      }
    }
    if ((await backendPid(sql)) !== p) throw new Error('the backend changed during a round')
    return sum.map((x) => ({ server: x.server / OPS, client: x.client / OPS })) as [Cpu, Cpu]
  }
  const profiles: object[] = []
  const r: Cpu[] = []
  const o: Cpu[] = []
  const b: Cpu[] = []
  const arrays: Cpu[] = []
  const scalars: Cpu[] = []
  type Batch = [{ tenant: string; category: string; id: string }, ValidEnvelope[]]
  const batches = (prefix: string): Batch[] => {
    const out: Batch[] = []
    for (let i = 0; i < OPS; i++) {
      const s = { tenant: 'bench', category: 'deployment', id: `${prefix}-${i % 4}` }
      out.push([s, [factory.intent(s, 'created', BENCH_DATA)]])
    }
    return out
  }
  // As the store calls them: expectation `any` (-1), no probe, one event.
  const direct = (call: typeof appendSql, xs: Batch[]) => (i: number) =>
    call(ours, 'bench', 'deployment', xs[i]![0].id, -1, xs[i]![1], false)
  const directOne: typeof appendSql = (sql, t, c, s, x, es, p) => appendOnePrototype(sql, t, c, s, x, es[0]!, p)
  if (paths) await db.admin.unsafe(readFileSync(new URL('./append-one-prototype.sql', import.meta.url), 'utf8'))
  for (let k = 0; k < ROUNDS; k++) {
    if (only !== 'ours') r.push(await run(raw, () => rawInsertOne(raw)))
    const events = batches(`a${k}`)
    if (only !== 'raw') o.push(await run(ours, (i) => store.append(events[i]![0], events[i]![1]), k > 0))
    if (oldSql && oldStore) b.push(await run(oldSql, (i) => oldStore.append(events[i]![0], events[i]![1])))
    if (paths) {
      const [a, c] = await interleaved(ours, direct(appendSql, batches(`b${k}`)), direct(directOne, batches(`c${k}`)))
      arrays.push(a)
      scalars.push(c)
    }
  }
  if (profile !== undefined) {
    // One profile of the rounds after the first (warm): their samples and time deltas joined.
    writeFileSync(profile, JSON.stringify(joinProfiles(profiles as Profile[])))
    console.log(`profile of ${profiles.length} round(s) written to ${profile}`)
  }
  const m = (xs: Cpu[], key: keyof Cpu) => median(xs.map((x) => x[key]))
  const row = (name: string, xs: Cpu[]) => ({
    append: name,
    'server µs': m(xs, 'server').toFixed(0),
    'client µs': m(xs, 'client').toFixed(0),
    'total µs': (m(xs, 'server') + m(xs, 'client')).toFixed(0),
    'server rounds': xs.map((x) => x.server.toFixed(0)).join(' '),
    'client rounds': xs.map((x) => x.client.toFixed(0)).join(' '),
  })
  console.log(`append-cpu: ${OPS} one-event appends × ${ROUNDS} rounds, CPU per append, medians`)
  console.table([
    ...(r.length ? [row('raw INSERT', r)] : []),
    ...(o.length ? [row('PgEventStore.append', o)] : []),
    ...(b.length ? [row(`PgEventStore.append, migrations < ${before}`, b)] : []),
    ...(arrays.length ? [row('appendSql (array entry point)', arrays)] : []),
    ...(scalars.length ? [row('prototype one-event entry point', scalars)] : []),
  ])
  const total = (xs: Cpu[]) => m(xs, 'server') + m(xs, 'client')
  if (r.length && o.length) console.log(`raw ÷ ours, CPU per append: ${(total(r) / total(o)).toFixed(2)}`)
  if (r.length && b.length) console.log(`raw ÷ ours before ${before}: ${(total(r) / total(b)).toFixed(2)}`)
  if (arrays.length) {
    const pct = (key: keyof Cpu) => ((1 - m(scalars, key) / m(arrays, key)) * 100).toFixed(1)
    console.log(
      `one-event entry point vs array entry point, CPU saved per append: server ${pct('server')} %, ` +
        `client ${pct('client')} %, total ${((1 - total(scalars) / total(arrays)) * 100).toFixed(1)} % (medians)`,
    )
    const saved = arrays.map((x, k) => 1 - (scalars[k]!.server + scalars[k]!.client) / (x.server + x.client))
    console.log(
      `  per round, total saved: ${saved.map((x) => `${(x * 100).toFixed(1)} %`).join(' ')}; ` +
        `median ${(median(saved) * 100).toFixed(1)} %`,
    )
  }
} finally {
  await db.drop()
  await older?.drop()
}

/**
 * The prototype's call (append-one-prototype.sql), as the store would make it: the event's fields as scalars,
 * the function called in the select list, its composite's text "(version,position,tx_id,recorded_at,t|f)"
 * taken apart here (no field of it is quoted: digits and an ISO instant), the row in appendSql's shape.
 */
async function appendOnePrototype(
  sql: Sql,
  tenant: string,
  category: string,
  streamId: string,
  expected: number,
  e: EventEnvelope,
  probeIds: boolean,
): Promise<Awaited<ReturnType<typeof appendSql>>> {
  const fn = e.kind === 'intent' ? 'append_one_intent' : 'append_one_fact'
  // occurred_at as text cast in SQL, as appendSql does: a timestamptz parameter goes through a JavaScript Date.
  const [row] = await sql<{ r: string }[]>`
    select eventplane.${sql(fn)}(${tenant}, ${category}, ${streamId}, ${expected}, ${e.event_id}::uuid, ${e.kind},
      ${e.type}, ${e.schema_version}::smallint, ${sql.json(e.data as JSONValue)}, ${e.correlation_id}::uuid,
      ${e.causation_id}::uuid, ${e.caused_by}, ${e.occurred_at}::text::timestamptz, ${probeIds})::text as r`
  const [version, position, txId, recordedAt, replayed] = row!.r.slice(1, -1).split(',')
  return {
    stream_versions: [version!],
    global_positions: [position!],
    tx_id: txId!,
    recorded_at: recordedAt!,
    replayed: replayed === 't',
  }
}

interface Profile {
  nodes: { id: number }[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

/** The rounds' profiles as one: node ids renumbered apart, samples and deltas in sequence. */
function joinProfiles(ps: Profile[]): Profile {
  const out: Profile = { nodes: [], samples: [], timeDeltas: [], startTime: 0, endTime: 0 }
  let offset = 0
  for (const p of ps) {
    const shift = <T extends { id: number; children?: number[] }>(n: T) => ({
      ...n,
      id: n.id + offset,
      ...(n.children ? { children: n.children.map((c) => c + offset) } : {}),
    })
    out.nodes.push(...p.nodes.map(shift))
    out.samples.push(...p.samples.map((s) => s + offset))
    out.timeDeltas.push(...p.timeDeltas)
    out.endTime += p.endTime - p.startTime
    offset += Math.max(...p.nodes.map((n) => n.id))
  }
  return out
}
