/**
 * pnpm tsx scripts/bench/snapshot-horizon-cpu.ts [--rounds 7] [--calls 500]
 * — what migration 0020 costs the relay's cheap read (HorizonRule 'xmin').
 *
 * The relay's read (store-pg `readAllTextSql`'s statement, prepared, rows as arrays, limit 100) with main's
 * predicate before 0020 (`tx_id < pg_snapshot_xmin(pg_current_snapshot())`) and with 0020's
 * (`tx_id < eventplane.snapshot_horizon(pg_current_snapshot(), checkpoint tx)`, inlined SQL), alternated in
 * blocks of `--calls` reads, the order swapped each round: the backend's CPU per read
 * (`/proc/<pid>/schedstat`). 10,000 events in one transaction, then a transaction holding an xid in another
 * database (the snapshot's xmin, open throughout), then 100 events in one transaction T above it. Shapes:
 * `behind xmin` (after the first load's last row, the checkpoint's transaction below xmin: 0020's CASE takes
 * its cheap branch; no rows either way), `page of 100` (from the start: the same 100 rows both ways), `end of
 * T` (after T's last row: T is final and above xmin, so 0020 computes T + 1; no rows either way), `mid T`
 * (after T's first row: 0 rows before, T's other 99 after, the fix itself).
 */
import { ROLES } from '@eventplane/store-pg'
import { loadAroundForeignXid, relayRead } from './horizon-read.ts'
import { argValue, backendCpuNs, backendPid, benchDatabase, loadAvg, median } from './lib.ts'

const ROUNDS = argValue('rounds', 7)
const CALLS = argValue('calls', 500)

const RULES = {
  before: 'pg_snapshot_xmin(pg_current_snapshot())',
  after: 'eventplane.snapshot_horizon(pg_current_snapshot(), $1::xid8)',
} as const

const db = await benchDatabase('snaphz')
const other = await benchDatabase('snaphz_other', { migrate: false })
console.log(`${new Date().toISOString()} load ${loadAvg()}`)
try {
  const held = await loadAroundForeignXid(db, other)
  try {
    const at = async (position: number): Promise<[string, string]> => {
      const [r] = await db.admin<{ tx: string }[]>`
        select tx_id::text as tx from eventplane.events where global_position = ${position}`
      return [r!.tx, String(position)]
    }
    const shapes: Record<string, [string, string]> = {
      'behind xmin': await at(10_000),
      'page of 100': ['0', '0'],
      'end of T': await at(10_100),
      'mid T': await at(10_001),
    }
    const relaySql = db.connect(ROLES.relay, 1)
    const pid = await backendPid(relaySql)
    const results: Record<string, { backend: number[]; rows: number }> = {}
    for (let round = 0; round < ROUNDS + 1; round++) {
      for (const [shape, after] of Object.entries(shapes)) {
        const order = round % 2 === 0 ? (['before', 'after'] as const) : (['after', 'before'] as const)
        for (const variant of order) {
          let rows = 0
          const ns0 = backendCpuNs(pid)
          for (let i = 0; i < CALLS; i++) rows = (await relayRead(relaySql, RULES[variant], after)).length
          const us = (backendCpuNs(pid) - ns0) / 1000 / CALLS
          if (round === 0) continue // warm-up
          const key = `${shape} ${variant}`
          results[key] ??= { backend: [], rows }
          results[key].backend.push(us)
        }
      }
    }
    const plans = await relaySql<{ generic: number; custom: number }[]>`
      select sum(generic_plans)::int as generic, sum(custom_plans)::int as custom from pg_prepared_statements`
    console.log(`plans of the reads: ${plans[0]!.generic} generic, ${plans[0]!.custom} custom`)
    console.log('| shape, rule | rows | backend µs/read median (rounds) |')
    console.log('| --- | --- | --- |')
    for (const [key, r] of Object.entries(results)) {
      console.log(
        `| ${key} | ${r.rows} | ${median(r.backend).toFixed(1)} (${r.backend.map((v) => v.toFixed(0)).join(' ')}) |`,
      )
    }
    // Each round measures both rules back to back: the median of those differences is steadier on a busy
    // machine than the difference of the medians.
    for (const shape of Object.keys(shapes)) {
      const [a, b] = [results[`${shape} after`]!.backend, results[`${shape} before`]!.backend]
      console.log(`${shape}: after − before, median of rounds ${median(a.map((v, i) => v - b[i]!)).toFixed(1)} µs/read`)
    }
  } finally {
    await held.release()
  }
} finally {
  await other.drop()
  await db.drop()
}
console.log(`load ${loadAvg()}`)
process.exit(0)
