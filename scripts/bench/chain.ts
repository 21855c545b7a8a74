/**
 * pnpm bench:chain — what the hash chain (issue 17) costs. Appends with the
 * chain's trigger on vs off, on the same database, alternating rounds (the
 * median of per-round ratios), and the speed of `verify` against a plain read
 * of the same rows.
 */
import { EventFactory } from '@eventplane/core'
import { PgEventStore, ROLES, verifyLog } from '@eventplane/store-pg'
import { createTestDatabase, vacuumLog } from '@eventplane/store-pg/testing'
import { argValue, compare, measure, printTable, summarize } from './lib.ts'

const ROUNDS = argValue('rounds', 5)
const SINGLE_OPS = argValue('single-ops', 1500)
const BATCH_OPS = argValue('batch-ops', 150)
const VERIFY_EVENTS = argValue('verify-events', 100_000)

const db = await createTestDatabase('ep_bench_chain')
try {
  // Bench database only: without the trigger no hash is written, so the column may be empty.
  await db.admin`alter table eventplane.events alter column hash drop not null`
  const chain = (on: boolean) =>
    db.admin.unsafe(`alter table eventplane.events ${on ? 'enable' : 'disable'} trigger events_chain`)
  const store = new PgEventStore(db.connect(ROLES.intentWriter, 8))
  const factories = {
    on: EventFactory.forTenant('chained', { causedBy: 'user:bench' }),
    off: EventFactory.forTenant('bench', { causedBy: 'user:bench' }),
  }
  const data = { image: 'registry.example/web:1.2.3', replicas: 3, labels: { team: 'platform', tier: 'web' } }

  // Each mode appends to its own streams, which grow over the rounds (so the trigger reads a predecessor).
  const appends = (on: boolean, ops: number, writers: number, size: number, streams: number) => async () => {
    await chain(on)
    const factory = factories[on ? 'on' : 'off']
    return measure(ops, writers, size, (i) => {
      const s = { tenant: on ? 'chained' : 'bench', category: 'deployment', id: `s${size}-${i % streams}` }
      return store.append(
        s,
        Array.from({ length: size }, () => factory.intent(s, 'created', data)),
      )
    })
  }
  const results = []
  for (const writers of [1, 8]) {
    results.push(
      await compare(
        `append 1 event, ${writers} writer(s): chain vs none`,
        0.9,
        ROUNDS,
        appends(false, SINGLE_OPS, writers, 1, writers * 4),
        appends(true, SINGLE_OPS, writers, 1, writers * 4),
      ),
    )
  }
  results.push(
    await compare(
      'append 100 events: chain vs none',
      0.9,
      ROUNDS,
      appends(false, BATCH_OPS, 1, 100, 8),
      appends(true, BATCH_OPS, 1, 100, 8),
    ),
  )
  await chain(true)

  const verifier = EventFactory.forTenant('verified', { causedBy: 'user:bench' })
  for (let i = 0; i < VERIFY_EVENTS; i += 1000) {
    const s = { tenant: 'verified', category: 'deployment', id: `v${i % 5000}` }
    await store.append(
      s,
      Array.from({ length: Math.min(1000, VERIFY_EVENTS - i) }, () => verifier.intent(s, 'created', data)),
    )
  }
  await vacuumLog(db.admin)
  const operator = db.connect(ROLES.operator, 2)
  results.push(
    await compare(
      `verify ${VERIFY_EVENTS} events vs reading them`,
      0.5,
      Math.max(3, Math.ceil(ROUNDS / 2)),
      async () => {
        const t = performance.now()
        const rows = await operator`select * from eventplane.events where tenant_id = 'verified'
          order by tenant_id, category, stream_id, stream_version`.cursor(500, () => {})
        void rows
        return { ops: 1, events: VERIFY_EVENTS, seconds: (performance.now() - t) / 1000, latenciesMs: [0] }
      },
      async () => {
        const t = performance.now()
        const r = await verifyLog(operator, { tenant: 'verified' })
        if (!r.intact || r.events !== VERIFY_EVENTS) throw new Error('the bench log does not verify')
        return { ops: 1, events: r.events, seconds: (performance.now() - t) / 1000, latenciesMs: [0] }
      },
    ),
  )
  console.log(
    `\nbench:chain on ${new Date().toISOString().slice(0, 10)}, PostgreSQL ${(await db.admin`show server_version`)[0]!.server_version}, ${ROUNDS} rounds (median of per-round ratios; raw = chain off)`,
  )
  printTable(results.map(summarize))
} finally {
  await db.drop()
}
