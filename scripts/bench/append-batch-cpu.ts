/**
 * pnpm tsx scripts/bench/append-batch-cpu.ts [--before 18] [--rounds 40] [--ops 30] — the backend CPU per event
 * of 100-event appends (PgEventStore.append, one connection, each append its own transaction, the streams growing
 * as in bench:chain) on a database with every migration against one migrated only below `--before`, in alternated
 * rounds (the order flipped each round), with the per-round difference: one migration's effect on the batch path,
 * end to end, in one run. Backend CPU from /proc/<pid>/schedstat; medians.
 */
import { EventFactory } from '@eventplane/core'
import { MIGRATIONS_DIR, PgEventStore, ROLES, migrate } from '@eventplane/store-pg'
import type { TestDatabase } from '@eventplane/store-pg/testing'
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BENCH_DATA, argValue, backendCpuNs, backendPid, median, benchDatabase } from './lib.ts'

const BEFORE = argValue('before', 18)
const ROUNDS = argValue('rounds', 40)
const OPS = argValue('ops', 30)

/** A database migrated with the migrations numbered below `version` only. */
async function databaseBefore(version: number): Promise<TestDatabase> {
  const dir = await mkdtemp(join(tmpdir(), 'ep-migrations-'))
  try {
    for (const f of await readdir(MIGRATIONS_DIR))
      if (Number(f.slice(0, 4)) < version) await cp(join(MIGRATIONS_DIR, f), join(dir, f))
    const older = await benchDatabase('batch_cpu_before', { migrate: false })
    await migrate(older.admin, { dir })
    return older
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const current = await benchDatabase('batch_cpu')
const older = await databaseBefore(BEFORE)
try {
  const factory = EventFactory.forTenant('bench', { causedBy: 'user:bench' })
  const sides = [
    { name: 'all migrations', db: current },
    { name: `migrations < ${BEFORE}`, db: older },
  ].map(({ name, db }) => {
    const sql = db.connect(ROLES.intentWriter, 1)
    return { name, sql, store: new PgEventStore(sql, { notifyAppends: false }), cpu: [] as number[] }
  })
  // Round -1 warms both backends (the function compiled, its statements planned) and is not counted.
  for (let k = -1; k < ROUNDS; k++) {
    for (const side of k % 2 ? sides : [...sides].reverse()) {
      const batches = Array.from({ length: OPS }, (_, i) => {
        const s = { tenant: 'bench', category: 'deployment', id: `s-${i % 8}` }
        return [s, Array.from({ length: 100 }, () => factory.intent(s, 'created', BENCH_DATA))] as const
      })
      const pid = await backendPid(side.sql)
      const started = backendCpuNs(pid)
      for (const [s, events] of batches) await side.store.append(s, events)
      const us = (backendCpuNs(pid) - started) / 1000 / (OPS * 100)
      if ((await backendPid(side.sql)) !== pid) throw new Error('the backend changed during a round')
      if (k >= 0) side.cpu.push(us)
    }
  }
  const [after, before] = sides as [(typeof sides)[0], (typeof sides)[0]]
  for (const side of sides) console.log(`${side.name}: backend CPU ${median(side.cpu).toFixed(2)} µs/event (median)`)
  const diff = after.cpu.map((x, i) => x - before.cpu[i]!)
  console.log(
    `all − before ${BEFORE}, per round: median ${median(diff).toFixed(2)} µs/event, ${diff.filter((d) => d < 0).length} of ${diff.length} rounds cheaper`,
  )
} finally {
  await current.drop()
  await older.drop()
}
