/**
 * pnpm tsx scripts/bench/store-cpu.ts [--ops 400] [--rounds 5] — server CPU per append,
 * read from /proc/<backend pid>/schedstat (nanoseconds on a CPU), and this process's CPU:
 * less sensitive to a loaded machine than wall time. Raw INSERT into a plain table vs
 * PgEventStore.append, 1 event and 100 events, alternating rounds, medians.
 */
import { randomUUID } from 'node:crypto'
import { EventFactory, START } from '@eventplane/core'
import { PgEventStore, ROLES, type Sql } from '@eventplane/store-pg'
import { countLogEvents, readRawLog, vacuumLog } from '@eventplane/store-pg/testing'
import { BENCH_DATA, argValue, backendCpuNs, backendPid, createRawEventsTable, median, benchDatabase } from './lib.ts'

const OPS = argValue('ops', 400)
const ROUNDS = argValue('rounds', 5)

const db = await benchDatabase('cpu')
try {
  const raw = db.connect('postgres' as never, 1)
  const ours = db.connect(ROLES.intentWriter, 1)
  await createRawEventsTable(db.admin)
  // The notifier would add a second statement on this one connection; measured apart
  // (docs/benchmarks/journal-2026-11-30-pm.md, 15:18–15:30, "The post-commit NOTIFY").
  const store = new PgEventStore(ours, { notifyAppends: false })
  const factory = EventFactory.forTenant('bench', { causedBy: 'user:bench' })
  const rawBatch = (n: number) => {
    const ids = Array.from({ length: n }, () => randomUUID())
    return raw`insert into raw_events (event_id, tenant_id, kind, category, stream_id, stream_version, type,
        schema_version, data, correlation_id, causation_id, caused_by, occurred_at)
      select u.id, 'bench', 'intent', 'deployment', 'raw', 1, 'created', 1, ${raw.json(BENCH_DATA)}, u.id, null, 'user:bench', now()
        from unnest(${ids}::uuid[]) as u(id)`
  }
  let round = 0
  const run = async (sql: Sql, op: (i: number) => Promise<unknown>) => {
    const p = await backendPid(sql)
    const s = backendCpuNs(p)
    const c = process.cpuUsage()
    for (let i = 0; i < OPS; i++) await op(i)
    const cu = process.cpuUsage(c)
    const after = await backendPid(sql)
    if (after !== p) console.error(`backend changed ${p} -> ${after}`)
    return { server: (backendCpuNs(p) - s) / 1000 / OPS, client: (cu.user + cu.system) / OPS }
  }
  const rows: Record<string, string>[] = []
  for (const n of [1, 100]) {
    const r: { server: number; client: number }[] = []
    const o: { server: number; client: number }[] = []
    for (let k = 0; k < ROUNDS; k++) {
      round++
      r.push(await run(raw, () => rawBatch(n)))
      o.push(
        await run(ours, (i) => {
          const s = { tenant: 'bench', category: 'deployment', id: `c${round}-${i}` }
          return store.append(
            s,
            Array.from({ length: n }, () => factory.intent(s, 'created', BENCH_DATA)),
          )
        }),
      )
    }
    const m = (xs: { server: number; client: number }[], k: 'server' | 'client') => median(xs.map((x) => x[k]))
    rows.push({
      append: `${n} event(s)`,
      'raw server µs': m(r, 'server').toFixed(0),
      'ours server µs': m(o, 'server').toFixed(0),
      'raw client µs': m(r, 'client').toFixed(0),
      'ours client µs': m(o, 'client').toFixed(0),
    })
  }
  console.log(`store-cpu: ${OPS} appends × ${ROUNDS} rounds, medians per append`)
  console.table(rows)

  // Reads: this process's CPU per 1,000 events, raw cursor (rows parsed, not mapped) vs readAll.
  await vacuumLog(db.admin)
  const total = await countLogEvents(db.admin)
  const relay = new PgEventStore(db.connect(ROLES.relay, 2))
  const reads: { raw: number[]; ours: number[] } = { raw: [], ours: [] }
  for (let k = 0; k < ROUNDS; k++) {
    let c = process.cpuUsage()
    const n = await readRawLog(raw, 1000, total, () => {})
    let u = process.cpuUsage(c)
    reads.raw.push(((u.user + u.system) / n) * 1000)
    c = process.cpuUsage()
    let m = 0
    for await (const batch of relay.readAll({ from: START, batchSize: 1000 })) m += batch.length
    u = process.cpuUsage(c)
    reads.ours.push(((u.user + u.system) / m) * 1000)
  }
  console.log(
    `readAll of ${total} events, client CPU µs per 1,000 events: raw ${median(reads.raw).toFixed(0)}, ours ${median(reads.ours).toFixed(0)} (ratio ${(median(reads.raw) / median(reads.ours)).toFixed(2)})`,
  )
} finally {
  await db.drop()
}
