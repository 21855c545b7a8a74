/**
 * node --import tsx scripts/bench/tenant-horizon-cpu.ts [--rounds 7] [--calls 200]
 * — backend CPU per tenant read (store-pg readAllSql with a tenant, readCategorySql, chainHeadsSql, as
 * postgres.js sends them, prepared and unprepared) with 0018's bodies (log_horizon a bare predicate: the
 * planner evaluates it too) and 0019's (a scalar subquery: once per read), alternated per round, the
 * order swapped each round; medians of `--calls` reads per block after 10 unmeasured ones.
 * Rows wait above xmin: `--big` (50,000) events of ten other tenants, 200 of acme, then a transaction of
 * this database holding an xid, open throughout, then 100 more of acme behind it, so every read takes log_horizon's
 * look-up (pg_stat_get_activity). Shapes: caught up (the checkpoint at acme's last event before the held
 * transaction: no rows) and, for the page, the first page of 100 rows.
 * Roles: reader (row level security: the planner's calls run before the tenant is set, see no row and
 * skip the look-up) and operator (cross-tenant: the planner's calls take the look-up too).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { postgres } from '@eventplane/store-pg/testing'
import { type Checkpoint, EventFactory, START } from '@eventplane/core'
import { MIGRATIONS_DIR, PgEventStore, ROLES } from '@eventplane/store-pg'
import { bulkLoadEvents, holdXid, vacuumLog } from '@eventplane/store-pg/testing'
import { chainHeadsSql } from '../../packages/store-pg/src/sql/chain-heads.ts'
import { readAllSql } from '../../packages/store-pg/src/sql/read-all.ts'
import { readCategorySql } from '../../packages/store-pg/src/sql/read-category.ts'
import { argValue, backendCpuNs, backendPid, benchDatabase, loadAvg, median } from './lib.ts'

const ROUNDS = argValue('rounds', 7)
const CALLS = argValue('calls', 200)
const BIG = argValue('big', 50_000)
const BODIES = {
  '0018': readFileSync(join(MIGRATIONS_DIR, '0018_log_horizon.sql'), 'utf8'),
  '0019': readFileSync(join(MIGRATIONS_DIR, '0019_tenant_horizon_once.sql'), 'utf8'),
} as const

const db = await benchDatabase('thcpu')
console.log(`${new Date().toISOString()} load ${loadAvg()}`)
try {
  // A big log of other tenants (tenant0..9) and a small tenant, acme: the planner reads acme through
  // the (tenant, category, stream, version) key and filters the order predicates row by row.
  await bulkLoadEvents(db.admin, 1, BIG, 100)
  const writer = new PgEventStore(db.connect(ROLES.intentWriter, 1))
  const acme = EventFactory.forTenant('acme', { causedBy: 'user:bench' })
  for (let b = 0; b < 2; b++) {
    const s = { tenant: 'acme', category: 'deployment', id: `s${b}` }
    await writer.append(
      s,
      Array.from({ length: 100 }, (_, i) => acme.intent(s, 'scaled', { i })),
    )
  }
  const [last] = await db.admin<{ tx: string; pos: string }[]>`
    select tx_id::text as tx, global_position::text as pos from eventplane.events where tenant_id = 'acme'
     order by tx_id desc, global_position desc limit 1`
  const held = await holdXid(db.admin)
  const behind = { tenant: 'acme', category: 'deployment', id: 'behind' }
  await writer.append(
    behind,
    Array.from({ length: 100 }, (_, i) => acme.intent(behind, 'scaled', { i })),
  )
  await vacuumLog(db.admin)
  const caughtUp: Checkpoint = { txId: BigInt(last!.tx), position: BigInt(last!.pos) }
  const reads: Record<string, (sql: postgres.Sql) => Promise<unknown>> = {
    'page, caught up': (sql) => readAllSql(sql, caughtUp, 100, 'acme'),
    'page of 100': (sql) => readAllSql(sql, START, 100, 'acme'),
    'category, caught up': (sql) => readCategorySql(sql, 'acme', 'deployment', caughtUp, 100),
    'chain heads': (sql) => chainHeadsSql(sql, 'acme'),
  }
  const conns: { name: string; sql: postgres.Sql; pid: number }[] = []
  for (const role of [ROLES.reader, ROLES.operator]) {
    for (const prepare of [true, false]) {
      const sql = postgres(db.roleUrl(role), { max: 1, prepare, onnotice: () => {} })
      conns.push({
        name: `${role.replace('eventplane_', '')} ${prepare ? 'prepared' : 'unprepared'}`,
        sql,
        pid: await backendPid(sql),
      })
    }
  }
  const us: Record<string, number[]> = {}
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? (['0018', '0019'] as const) : (['0019', '0018'] as const)
    for (const variant of order) {
      await db.admin.unsafe(BODIES[variant])
      for (const c of conns) {
        for (const [name, read] of Object.entries(reads)) {
          for (let i = 0; i < 10; i++) await read(c.sql)
          const t0 = backendCpuNs(c.pid)
          for (let i = 0; i < CALLS; i++) await read(c.sql)
          const key = `${c.name} | ${name} | ${variant}`
          us[key] = [...(us[key] ?? []), (backendCpuNs(c.pid) - t0) / CALLS / 1000]
        }
      }
    }
  }
  console.log(`${new Date().toISOString()} load ${loadAvg()}`)
  console.log('role, statements | read | backend us per read 0018 -> 0019 (median of rounds), ratio')
  for (const c of conns) {
    for (const name of Object.keys(reads)) {
      const a = median(us[`${c.name} | ${name} | 0018`]!)
      const b = median(us[`${c.name} | ${name} | 0019`]!)
      console.log(`${c.name} | ${name} | ${a.toFixed(0)} -> ${b.toFixed(0)} | ${(b / a).toFixed(2)}`)
    }
  }
  for (const c of conns) await c.sql.end()
  await held.release()
} finally {
  await db.drop()
}
