/**
 * pnpm tsx scripts/bench/read-cpu.ts [--events 100000] [--rounds 5] [--only raw,readAll,stream] — the global
 * read's cost per event, client and server: this process's CPU (`process.cpuUsage`) and the CPU of every
 * backend of the bench database (`/proc/<pid>/schedstat`), with wall time, for a raw cursor over
 * `select *` (the baseline of bench:store), `readAll` (keyset pages) and `streamLog` (the rebuild's cursor),
 * alternating rounds, medians. CPU is much less sensitive than wall time to a machine shared with others.
 * `--streams n` loads as bench:replay does (n streams over ten tenants).
 * `--profile file.cpuprofile` records a V8 CPU profile of the measured rounds only (not the load), for
 * scripts/bench/cpuprofile-summary.ts; with `--only readAll` it profiles one reader alone.
 * `--base DIR` adds `readAll@base`, `stream@base` and `rebuild@base`: the same readers from another checkout
 * (a worktree of the commit before a change, its packages installed), in this same process, rounds
 * interleaved with ours: a before/after comparison that a busy machine disturbs equally on both sides.
 */
import { randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { START } from '@eventplane/core'
import { PgEventStore, ROLES, streamLog } from '@eventplane/store-pg'
import { bulkLoadEvents, insertRawEvents, rawGapSafeLog, readRawLog, vacuumLog } from '@eventplane/store-pg/testing'
import { PROJECTOR_ROLE, rebuildProjection } from '@eventplane/runtime'
import { BENCH_DATA, argString, argValue, databaseBackendsCpuNs, median, benchDatabase } from './lib.ts'
import { perStream } from './replay-projection.ts'

const EVENTS = argValue('events', 100_000)
const ROUNDS = argValue('rounds', 5)
const BATCH = argValue('batch', 1000)
/** With `--streams n`: bench:replay's load (bulkLoadEvents, ten tenants, n streams) instead of bench:store's. */
const STREAMS = argValue('streams', 0)
const PROFILE = argString('profile')
const BASE = argString('base')
const ONLY = argString('only', 'raw,readAll,stream,rawGapSafe,rebuild').split(',')

const db = await benchDatabase('read')
try {
  if (STREAMS > 0) {
    for (let from = 1; from <= EVENTS; from += 100_000)
      await bulkLoadEvents(db.admin, from, Math.min(EVENTS, from + 99_999), STREAMS)
  } else {
    for (let i = 0; i < EVENTS; i += 1000) {
      const ids = Array.from({ length: Math.min(1000, EVENTS - i) }, () => randomUUID())
      await insertRawEvents(db.admin, `r${i}`, ids, BENCH_DATA)
    }
  }
  await vacuumLog(db.admin)
  const raw = db.connect('postgres' as never, 2)
  const relay = new PgEventStore(db.connect(ROLES.relay, 2))
  const projector = db.connect(PROJECTOR_ROLE, 4)

  const backendsCpu = () => databaseBackendsCpuNs(db.admin)

  const readers: Record<string, () => Promise<number>> = {
    raw: () => readRawLog(raw, BATCH, EVENTS, () => {}),
    readAll: async () => {
      let n = 0
      for await (const batch of relay.readAll({ from: START, batchSize: BATCH })) n += batch.length
      return n
    },
    stream: async () => {
      let n = 0
      for await (const batch of streamLog(projector, { from: START, batchSize: BATCH })) n += batch.length
      return n
    },
    // bench:replay's pair: the raw gap-safe cursor and a reducer rebuild (shadow, swap), 2,000 rows a fetch.
    rawGapSafe: async () => {
      let n = 0
      for await (const batch of rawGapSafeLog(projector, 2000)) n += batch.length
      return n
    },
    rebuild: async () =>
      (await rebuildProjection({ projection: perStream, sql: projector, digest: false, restart: true })).events,
  }
  if (BASE) {
    const store = (await import(`${BASE}/packages/store-pg/src/index.ts`)) as typeof import('@eventplane/store-pg')
    const runtime = (await import(`${BASE}/packages/runtime/src/index.ts`)) as typeof import('@eventplane/runtime')
    const baseRelay = new store.PgEventStore(relay.sql)
    readers['readAll@base'] = async () => {
      let n = 0
      for await (const batch of baseRelay.readAll({ from: START, batchSize: BATCH })) n += batch.length
      return n
    }
    readers['stream@base'] = async () => {
      let n = 0
      for await (const batch of store.streamLog(projector, { from: START, batchSize: BATCH })) n += batch.length
      return n
    }
    readers['rebuild@base'] = async () =>
      (await runtime.rebuildProjection({ projection: perStream, sql: projector, digest: false, restart: true })).events
  }
  // Warm every pool (connections open, statements prepared) before measuring.
  for (const name of ONLY) await readers[name]!()

  const results: Record<string, { wall: number[]; client: number[]; server: number[] }> = {}
  const session = PROFILE ? new Session() : undefined
  if (session) {
    session.connect()
    await session.post('Profiler.enable')
    await session.post('Profiler.start')
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of ONLY) {
      const server0 = await backendsCpu()
      const cpu = process.cpuUsage()
      const t = performance.now()
      const n = await readers[name]!()
      const wall = (performance.now() - t) / 1000
      const used = process.cpuUsage(cpu)
      const server = (await backendsCpu()) - server0
      if (n !== EVENTS) throw new Error(`${name} read ${n} events, expected ${EVENTS}`)
      results[name] ??= { wall: [], client: [], server: [] }
      const r = results[name]
      r.wall.push(n / wall)
      r.client.push((used.user + used.system) / n)
      r.server.push(server / 1000 / n)
    }
  }
  if (session) {
    const { profile } = await session.post('Profiler.stop')
    writeFileSync(PROFILE!, JSON.stringify(profile))
    session.disconnect()
  }
  // The rebuild is compared with bench:replay's baseline, the other readers with bench:store's.
  const baselineOf = (name: string) => results[name.startsWith('rebuild') ? 'rawGapSafe' : 'raw']?.wall
  const rows = Object.entries(results).map(([name, r]) => ({
    reader: name,
    'ev/s': Math.round(median(r.wall)),
    'ratio to raw (median of rounds)': baselineOf(name)
      ? +median(r.wall.map((w, i) => w / baselineOf(name)![i]!)).toFixed(2)
      : '-',
    'client µs/event': +median(r.client).toFixed(2),
    'server µs/event': +median(r.server).toFixed(2),
  }))
  console.log(`read-cpu: ${EVENTS} events, batch ${BATCH}, ${ROUNDS} rounds (medians)`)
  console.table(rows)
} finally {
  await db.drop()
}
