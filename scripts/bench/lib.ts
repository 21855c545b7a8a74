/**
 * Shared helpers for the benchmarks: timing, percentiles, rounds and the printed table, and what an interrupted
 * bench removes (its databases and child processes, on SIGINT/SIGTERM).
 */
import type { ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { constants, loadavg } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Sql } from '@eventplane/store-pg'
import { type TestDatabase, createTestDatabase } from '@eventplane/store-pg/testing'

/** The event data every store benchmark appends (ours and raw alike). */
export const BENCH_DATA = {
  image: 'registry.example/web:1.2.3',
  replicas: 3,
  labels: { team: 'platform', tier: 'web' },
}

/** The raw baseline's table: the log's columns with plain constraints, no functions, triggers or RLS. */
export async function createRawEventsTable(admin: Sql): Promise<void> {
  await admin`create table raw_events (
    global_position bigint generated always as identity primary key, event_id uuid not null unique,
    tenant_id text not null, kind text not null, category text not null, stream_id text not null,
    stream_version bigint not null, type text not null, schema_version smallint not null, data jsonb not null,
    correlation_id uuid not null, causation_id uuid, caused_by text not null, occurred_at timestamptz not null,
    recorded_at timestamptz not null default now())`
}

/** The raw baseline of a one-event append: one INSERT of one row into raw_events. */
export function rawInsertOne(sql: Sql): Promise<unknown> {
  return sql`insert into raw_events (event_id, tenant_id, kind, category, stream_id, stream_version, type, schema_version,
      data, correlation_id, causation_id, caused_by, occurred_at)
    values (${randomUUID()}, 'bench', 'intent', 'deployment', 'raw', 1, 'created', 1, ${sql.json(BENCH_DATA)}, ${randomUUID()},
      null, 'user:bench', now())`
}

/** The backend process serving `sql` (a one-connection pool). */
export async function backendPid(sql: Sql): Promise<number> {
  return (await sql<{ pid: number }[]>`select pg_backend_pid() as pid`)[0]!.pid
}

/** CPU time (ns) backend `pid` has used so far, from /proc/<pid>/schedstat. */
export function backendCpuNs(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0])
}

/** CPU time (ns) every backend of `admin`'s database but its own has used so far (one that ended is not counted). */
export async function databaseBackendsCpuNs(admin: Sql): Promise<number> {
  const pids = await admin<{ pid: number }[]>`select pid from pg_stat_activity
    where datname = current_database() and pid <> pg_backend_pid()`
  let ns = 0
  for (const { pid } of pids) {
    try {
      ns += backendCpuNs(pid)
    } catch {}
  }
  return ns
}

export interface Measurement {
  ops: number
  events: number
  seconds: number
  latenciesMs: number[]
  /** CPU time (user + system) this process spent, when recorded: less sensitive to a busy machine than wall time. */
  cpuMs?: number
}

/** CPU time (user + system, µs) this process spent since `since` (a `process.cpuUsage()` reading). */
export function cpuUsSince(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since)
  return used.user + used.system
}

/** CPU time (user + system, ms) this process spent since `since` (a `process.cpuUsage()` reading). */
export function cpuMsSince(since: NodeJS.CpuUsage): number {
  return cpuUsSince(since) / 1000
}

/** The machine's load average, its first `figures` figures (1, 5, 15 minutes) with two decimals: `0.52 0.61 0.70`. */
export function loadAvg(figures: 1 | 2 | 3 = 3): string {
  return loadavg()
    .slice(0, figures)
    .map((n) => n.toFixed(2))
    .join(' ')
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

export const median = (values: number[]): number => percentile(values, 50)

/**
 * Runs `ops` operations on `concurrency` loops and records each one's latency. `op` gets the operation's
 * number and its loop's (0 … concurrency − 1): a loop never has two operations in flight.
 */
export async function measure(
  ops: number,
  concurrency: number,
  eventsPerOp: number,
  op: (i: number, loop: number) => Promise<unknown>,
): Promise<Measurement> {
  const latenciesMs: number[] = []
  let next = 0
  const cpu = process.cpuUsage()
  const start = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async (_, loop) => {
      for (let i = next++; i < ops; i = next++) {
        const t = performance.now()
        await op(i, loop)
        latenciesMs.push(performance.now() - t)
      }
    }),
  )
  const seconds = (performance.now() - start) / 1000
  return { ops, events: ops * eventsPerOp, seconds, latenciesMs, cpuMs: cpuMsSince(cpu) }
}

export interface Comparison {
  name: string
  target: number
  raw: Measurement[]
  ours: Measurement[]
}

/** Alternates baseline and ours for `rounds` rounds, so drift and noise hit both. */
export async function compare(
  name: string,
  target: number,
  rounds: number,
  raw: () => Promise<Measurement>,
  ours: () => Promise<Measurement>,
): Promise<Comparison> {
  const result: Comparison = { name, target, raw: [], ours: [] }
  for (let r = 0; r < rounds; r++) {
    result.raw.push(await raw())
    result.ours.push(await ours())
    const last =
      result.ours.at(-1)!.events /
      result.ours.at(-1)!.seconds /
      (result.raw.at(-1)!.events / result.raw.at(-1)!.seconds)
    process.stderr.write(`  ${name}: round ${r + 1}/${rounds} ratio ${last.toFixed(2)}\n`)
  }
  return result
}

/**
 * Runs `run` once per variant in each of rounds 0 … `rounds`, the variants' order changing every round so that
 * drift and noise hit them all: `rotate` starts each round one variant later, `reverse` runs every other round
 * backwards. Round 0 warms up (JIT, caches, a stream's first messages) and is not kept. `kept` sees each kept
 * result as it comes (progress lines). Returns each variant's kept results, in the order first kept.
 */
export async function alternatedRounds<V, R>(
  variants: readonly V[],
  rounds: number,
  order: 'rotate' | 'reverse',
  run: (variant: V, round: number) => Promise<R>,
  kept: (variant: V, round: number, result: R) => void = () => {},
): Promise<Map<V, R[]>> {
  const results = new Map<V, R[]>()
  for (let round = 0; round <= rounds; round++) {
    const ordered =
      order === 'rotate'
        ? variants.map((_, i) => variants[(i + round) % variants.length]!)
        : round % 2 === 0
          ? variants
          : [...variants].reverse()
    for (const variant of ordered) {
      const result = await run(variant, round)
      if (round === 0) continue
      results.set(variant, [...(results.get(variant) ?? []), result])
      kept(variant, round, result)
    }
  }
  return results
}

/** Events per second of one measurement. */
export const rate = (m: Measurement): number => m.events / m.seconds

/** Ours ÷ raw of each round of a comparison. */
export const ratios = (c: Comparison): number[] => c.ours.map((m, i) => rate(m) / rate(c.raw[i]!))

export function summarize(c: Comparison): Record<string, string | number | boolean> {
  const ratio = median(ratios(c))
  const lat = (ms: Measurement[], p: number) => median(ms.map((m) => percentile(m.latenciesMs, p)))
  return {
    benchmark: c.name,
    'raw ev/s': Math.round(median(c.raw.map(rate))),
    'ours ev/s': Math.round(median(c.ours.map(rate))),
    'raw p50 ms': +lat(c.raw, 50).toFixed(2),
    'ours p50 ms': +lat(c.ours, 50).toFixed(2),
    'raw p99 ms': +lat(c.raw, 99).toFixed(2),
    'ours p99 ms': +lat(c.ours, 99).toFixed(2),
    'median ratio': +ratio.toFixed(2),
    target: c.target,
    meets: ratio >= c.target,
  }
}

export function printTable(rows: Record<string, string | number | boolean>[]): void {
  console.table(rows)
  console.log('\nmarkdown:')
  const cols = Object.keys(rows[0] ?? {})
  console.log(`| ${cols.join(' | ')} |\n|${cols.map(() => '---').join('|')}|`)
  for (const row of rows) console.log(`| ${cols.map((c) => String(row[c])).join(' | ')} |`)
}

/** A comma-separated list of numbers: `--name 1,2,4`. */
export function argList(name: string, fallback: number[]): number[] {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? '').split(',').map(Number) : fallback
}

/** The text after `--<name>` on the command line, else `fallback`. */
export function argString(name: string): string | undefined
export function argString(name: string, fallback: string): string
export function argString(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback
}

export function argValue(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}

/**
 * Interrupted benches (Ctrl-C, SIGTERM) remove what they made: a bench's databases ({@link benchDatabase}) and
 * child processes ({@link benchChild}) are registered here, and the first SIGINT or SIGTERM drops and stops them
 * all (waiting for a database still being made), then exits 130 or 143. Its nats-servers need nothing more: the
 * testing helper's own exit hook SIGKILLs them on the signal (and the kernel does when this process dies at all,
 * `dieWithParent`). A run killed with SIGKILL still leaves its databases: `pnpm bench:cleanup`.
 */
const cleanups = new Set<() => Promise<unknown>>()
/** Databases being made: an interrupt waits for them, so that they are dropped too. */
const creating = new Set<Promise<unknown>>()
let interrupted: NodeJS.Signals | undefined
/** How long an interrupted bench waits for its cleanups (dropping a 10M-event database takes a few seconds). */
const CLEANUP_TIMEOUT_MS = 30_000
/** Every bench database's name starts with this; `pnpm bench:cleanup` drops those whose process is gone. */
export const BENCH_DB_PREFIX = 'ep_bench_'

function onInterrupt(signal: NodeJS.Signals): void {
  // Once: a second Ctrl-C (or the nats-server hook re-raising the signal) does not cut the cleanup short.
  if (interrupted !== undefined) return
  interrupted = signal
  const code = 128 + constants.signals[signal]
  // The interrupted run's own errors (its queries cut off by the drop) are expected now, not a crash that ends
  // this process half way through the drop; and its own `process.exit(0)` keeps the signal's code.
  process.on('uncaughtException', () => {})
  process.on('unhandledRejection', () => {})
  process.on('exit', () => {
    process.exitCode = code
  })
  process.stderr.write(`\n${signal}: removing the bench's databases and child processes…\n`)
  const cleanup = (async () => {
    await Promise.allSettled([...creating])
    const results = await Promise.allSettled([...cleanups].map((c) => c()))
    for (const r of results)
      if (r.status === 'rejected')
        process.stderr.write(`  cleanup failed: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}\n`)
  })()
  void Promise.race([cleanup.then(() => true), sleep(CLEANUP_TIMEOUT_MS, false)]).then((done) => {
    if (!done) process.stderr.write(`  cleanup unfinished after ${CLEANUP_TIMEOUT_MS / 1000} s: pnpm bench:cleanup\n`)
    process.exit(code)
  })
}

let handlerInstalled = false

function installHandler(): void {
  if (handlerInstalled) return
  handlerInstalled = true
  process.on('SIGINT', onInterrupt)
  process.on('SIGTERM', onInterrupt)
}

function register(cleanup: () => Promise<unknown>): void {
  installHandler()
  cleanups.add(cleanup)
}

/**
 * {@link createTestDatabase} for a bench: `ep_bench_<name>_<pid>_<random>`, dropped on SIGINT/SIGTERM as well as
 * by its own `drop()` (one drop, whoever asks first).
 */
export async function benchDatabase(name: string, options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  if (interrupted !== undefined) throw new Error(`interrupted (${interrupted}): no new database`)
  installHandler()
  const made = createTestDatabase(`${BENCH_DB_PREFIX}${name}`, options).then((db) => {
    let dropping: Promise<void> | undefined
    const drop = (): Promise<void> => {
      dropping ??= db.drop().finally(() => cleanups.delete(drop))
      return dropping
    }
    register(drop)
    return { ...db, drop }
  })
  creating.add(made)
  try {
    return await made
  } finally {
    creating.delete(made)
  }
}

/** Stops `child` (SIGTERM, SIGKILL after 5 s) if the bench is interrupted while it runs; returns it. */
export function benchChild<C extends ChildProcess>(child: C): C {
  const gone = new Promise<void>((done) => {
    if (child.exitCode !== null || child.signalCode !== null) done()
    else child.once('exit', () => done())
  })
  const stop = async (): Promise<void> => {
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await gone
    clearTimeout(timer)
  }
  register(stop)
  void gone.then(() => cleanups.delete(stop))
  return child
}
