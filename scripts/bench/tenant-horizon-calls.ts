/**
 * node --import tsx scripts/bench/tenant-horizon-calls.ts
 * — how many times one tenant read (store-pg readAllSql with a tenant, readCategorySql, chainHeadsSql,
 * as postgres.js sends them: prepared, and unprepared) calls eventplane.log_horizon, counted with
 * track_functions = 'all' (pg_stat_get_xact_function_calls inside the read's own transaction: functionCallsOf,
 * packages/store-pg/test/function-calls.ts, shared with log-horizon.test.ts).
 */
import { postgres } from '@eventplane/store-pg/testing'
import { EventFactory, START } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { holdXid } from '@eventplane/store-pg/testing'
import { readAllSql } from '../../packages/store-pg/src/sql/read-all.ts'
import { readCategorySql } from '../../packages/store-pg/src/sql/read-category.ts'
import { chainHeadsSql } from '../../packages/store-pg/src/sql/chain-heads.ts'
import { benchDatabase } from './lib.ts'
import { LOG_HORIZON, functionCallsOf } from '../../packages/store-pg/test/function-calls.ts'

const db = await benchDatabase('thcalls')
try {
  await db.admin.unsafe(`alter database "${db.name}" set track_functions = 'all'`)
  const writer = new PgEventStore(db.connect(ROLES.intentWriter, 1))
  const acme = EventFactory.forTenant('acme', { causedBy: 'user:bench' })
  const s = { category: 'deployment', id: 'web' }
  await writer.append(
    { tenant: 'acme', ...s },
    [1, 2, 3, 4, 5].map((n) => acme.intent(s, 'created', { n })),
  )
  const held = await holdXid(db.admin)
  await writer.append({ tenant: 'acme', ...s }, [acme.intent(s, 'scaled', {})])
  const reads = {
    all: (sql: postgres.Sql) => readAllSql(sql, START, 100, 'acme'),
    category: (sql: postgres.Sql) => readCategorySql(sql, 'acme', 'deployment', START, 100),
    chainHeads: (sql: postgres.Sql) => chainHeadsSql(sql, 'acme'),
  }
  for (const prepare of [true, false]) {
    const sql = postgres(db.roleUrl(ROLES.reader), { max: 1, prepare, onnotice: () => {} })
    for (const [name, read] of Object.entries(reads)) {
      const counts: number[] = []
      for (let i = 0; i < 8; i++) counts.push(await functionCallsOf(sql, LOG_HORIZON, read))
      console.log(`prepare=${prepare} ${name}: calls per read ${counts.join(' ')}`)
    }
    await sql.end()
  }
  await held.release()
} finally {
  await db.drop()
}
