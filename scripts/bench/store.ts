/**
 * pnpm bench:store — raw PostgreSQL vs PgEventStore in the same run, on the same
 * database, alternating rounds; prints events/s, p50/p99 and the median ratio.
 */
import { randomUUID } from 'node:crypto'
import { EventFactory, START } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { countLogEvents, insertRawEvents, readRawLog, vacuumLog } from '@eventplane/store-pg/testing'
import {
  BENCH_DATA,
  argList,
  argValue,
  compare,
  createRawEventsTable,
  measure,
  printTable,
  rawInsertOne,
  summarize,
  benchDatabase,
} from './lib.ts'

const ROUNDS = argValue('rounds', 5)
const SINGLE_OPS = argValue('single-ops', 1500)
const BATCH_OPS = argValue('batch-ops', 150)
const READ_EVENTS = argValue('read-events', 100_000)
/** Writer counts for the single-event append rows (issue 15's scaling curve, ours and raw at each): `--writers 1,8`. */
const WRITERS = argList('writers', [1, 2, 4, 8, 16, 32])

const db = await benchDatabase('store')
try {
  const poolSize = Math.max(8, ...WRITERS)
  const admin = db.connect('postgres' as never, poolSize)
  await createRawEventsTable(db.admin)
  const store = new PgEventStore(db.connect(ROLES.intentWriter, poolSize))
  const factory = EventFactory.forTenant('bench', { causedBy: 'user:bench' })
  let round = 0

  const rawInsert = (sql: typeof admin, n: number) => {
    const rows = Array.from({ length: n }, () => {
      const id = randomUUID()
      return { id, data: JSON.stringify(BENCH_DATA) }
    })
    return sql`insert into raw_events (event_id, tenant_id, kind, category, stream_id, stream_version, type,
        schema_version, data, correlation_id, causation_id, caused_by, occurred_at)
      select u.id, 'bench', 'intent', 'deployment', 'raw', 1, 'created', 1, u.data::jsonb, u.id, null, 'user:bench', now()
        from unnest(${rows.map((r) => r.id)}::uuid[], ${rows.map((r) => r.data)}::text[]) as u(id, data)`
  }

  const results = []
  for (const writers of WRITERS) {
    results.push(
      await compare(
        `append 1 event, ${writers} writer(s)`,
        0.8,
        ROUNDS,
        () => measure(SINGLE_OPS, writers, 1, () => rawInsertOne(admin)),
        () => {
          round++
          return measure(SINGLE_OPS, writers, 1, (i) => {
            const s = { tenant: 'bench', category: 'deployment', id: `s${round}-${i % (writers * 4)}` }
            return store.append(s, [factory.intent(s, 'created', BENCH_DATA)])
          })
        },
      ),
    )
  }
  results.push(
    await compare(
      'append 100 events',
      0.7,
      ROUNDS,
      () => measure(BATCH_OPS, 1, 100, () => rawInsert(admin, 100)),
      () => {
        round++
        return measure(BATCH_OPS, 1, 100, (i) => {
          const s = { tenant: 'bench', category: 'deployment', id: `b${round}-${i}` }
          return store.append(
            s,
            Array.from({ length: 100 }, () => factory.intent(s, 'created', BENCH_DATA)),
          )
        })
      },
    ),
  )

  // The same batch as a raw INSERT into the log table itself (its indexes, checks and
  // NOTIFY trigger, as superuser without RLS): separates what our code costs from
  // what the log's schema costs.
  const rawLogInsert = (n: number, stream: string) =>
    insertRawEvents(
      admin,
      stream,
      Array.from({ length: n }, () => randomUUID()),
      BENCH_DATA,
    )
  results.push(
    await compare(
      'append 100 events vs raw INSERT into the log table',
      0.7,
      ROUNDS,
      () => {
        round++
        return measure(BATCH_OPS, 1, 100, (i) => rawLogInsert(100, `raw${round}-${i}`))
      },
      () => {
        round++
        return measure(BATCH_OPS, 1, 100, (i) => {
          const s = { tenant: 'bench', category: 'deployment', id: `c${round}-${i}` }
          return store.append(
            s,
            Array.from({ length: 100 }, () => factory.intent(s, 'created', BENCH_DATA)),
          )
        })
      },
    ),
  )

  const n = await countLogEvents(db.admin)
  for (let i = n; i < READ_EVENTS; i += 1000) {
    const s = { tenant: 'bench', category: 'deployment', id: `r${i}` }
    await store.append(
      s,
      Array.from({ length: Math.min(1000, READ_EVENTS - i) }, () => factory.intent(s, 'created', BENCH_DATA)),
    )
  }
  await vacuumLog(db.admin)
  const relay = new PgEventStore(db.connect(ROLES.relay, 2))
  const readRounds = Math.max(3, Math.ceil(ROUNDS / 2))
  results.push(
    await compare(
      `readAll ${READ_EVENTS} events`,
      0.8,
      readRounds,
      async () => {
        const t = performance.now()
        const count = await readRawLog(admin, 1000, READ_EVENTS, () => {})
        return { ops: 1, events: count, seconds: (performance.now() - t) / 1000, latenciesMs: [performance.now() - t] }
      },
      async () => {
        const t = performance.now()
        let count = 0
        for await (const batch of relay.readAll({ from: START, batchSize: 1000 })) {
          count += batch.length
          if (count >= READ_EVENTS) break
        }
        return { ops: 1, events: count, seconds: (performance.now() - t) / 1000, latenciesMs: [performance.now() - t] }
      },
    ),
  )
  console.log(
    `\nbench:store on ${new Date().toISOString().slice(0, 10)}, PostgreSQL ${(await db.admin`show server_version`)[0]!.server_version}, ${ROUNDS} rounds (median of per-round ratios)`,
  )
  printTable(results.map(summarize))
} finally {
  await db.drop()
}
