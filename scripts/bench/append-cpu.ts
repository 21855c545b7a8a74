/**
 * pnpm tsx scripts/bench/append-cpu.ts [--ops 500] [--rounds 5] [--only ours] — CPU per one-event append,
 * this process's (process.cpuUsage) and the backend's (/proc/<pid>/schedstat), raw INSERT of one row vs
 * PgEventStore.append of one event to an existing stream (four streams per round, as bench:store's 1 writer),
 * alternating rounds, medians. The envelopes are made before each timed loop: the client column is the
 * append's own work. `--only ours` runs just the appends; `--profile file.cpuprofile` records this process's
 * CPU profile over the timed loops of the appends only (summarise with cpuprofile-summary.ts).
 * `--before 15` adds a third row, the same appends to a second database migrated only up to 0014, in the
 * same alternating rounds: a migration's effect measured within one run.
 */
import { EventFactory, type ValidEnvelope } from '@eventplane/core'
import { MIGRATIONS_DIR, PgEventStore, ROLES, migrate } from '@eventplane/store-pg'
import { type TestDatabase, createTestDatabase } from '@eventplane/store-pg/testing'
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises'
import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Session } from 'node:inspector/promises'
import type { Sql } from 'postgres'
import {
  BENCH_DATA,
  argString,
  argValue,
  backendCpuNs,
  backendPid,
  createRawEventsTable,
  median,
  rawInsertOne,
} from './lib.ts'

const OPS = argValue('ops', 500)
const ROUNDS = argValue('rounds', 5)
const only = argString('only')
const profile = argString('profile')
const beforeArg = argString('before')
const before = beforeArg === undefined ? undefined : Number(beforeArg)

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
    const older = await createTestDatabase('ep_bench_append_cpu_before', { migrate: false })
    await migrate(older.admin, { dir })
    return older
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const db = await createTestDatabase('ep_bench_append_cpu')
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
  const profiles: object[] = []
  const r: Cpu[] = []
  const o: Cpu[] = []
  const b: Cpu[] = []
  for (let k = 0; k < ROUNDS; k++) {
    if (only !== 'ours') r.push(await run(raw, () => rawInsertOne(raw)))
    const events: [{ tenant: string; category: string; id: string }, ValidEnvelope[]][] = []
    for (let i = 0; i < OPS; i++) {
      const s = { tenant: 'bench', category: 'deployment', id: `a${k}-${i % 4}` }
      events.push([s, [factory.intent(s, 'created', BENCH_DATA)]])
    }
    if (only !== 'raw') o.push(await run(ours, (i) => store.append(events[i]![0], events[i]![1]), k > 0))
    if (oldSql && oldStore) b.push(await run(oldSql, (i) => oldStore.append(events[i]![0], events[i]![1])))
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
  ])
  const total = (xs: Cpu[]) => m(xs, 'server') + m(xs, 'client')
  if (r.length && o.length) console.log(`raw ÷ ours, CPU per append: ${(total(r) / total(o)).toFixed(2)}`)
  if (r.length && b.length) console.log(`raw ÷ ours before ${before}: ${(total(r) / total(b)).toFixed(2)}`)
} finally {
  await db.drop()
  await older?.drop()
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
