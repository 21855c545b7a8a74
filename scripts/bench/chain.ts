/**
 * pnpm bench:chain — what the hash chain (issue 17) costs. Appends with the
 * chain vs the same append without it, on the same database, alternating
 * rounds (the median of per-round ratios, printed as the chain's cost), and
 * the speed of `verify` against a plain read of the same rows. Since 0013
 * the append functions compute the chain themselves (since 0014 in one loop
 * before their INSERT, since 0015 one expression for one event, since 0018
 * each event's values joined between pieces of text made once per run);
 * "without" is the same function with that cut out (its hashes stay NULL)
 * and the trigger off, which would otherwise chain the rows, created on this
 * bench database only.
 * Each append comparison gives two ratios per round, chain ÷ none: the wall
 * rate's and the writers' backends' CPU per event (none ÷ chain, so 1.0 is
 * free in both); the server's CPU is what the chain adds and moves less with
 * the machine's load than wall time does.
 */
import { EventFactory } from '@eventplane/core'
import { PgEventStore, ROLES, type Sql, verifyLog } from '@eventplane/store-pg'
import { vacuumLog } from '@eventplane/store-pg/testing'
import {
  BENCH_DATA,
  type Measurement,
  argString,
  argValue,
  backendCpuNs,
  compare,
  measure,
  median,
  printTable,
  ratios,
  summarize,
  benchDatabase,
} from './lib.ts'

const ROUNDS = argValue('rounds', 5)
/** The batch comparison is the one at issue 17's line and a round of it takes ~2 s: more rounds by default. */
const BATCH_ROUNDS = argValue('batch-rounds', 3 * ROUNDS)
const VERIFY_ROUNDS = argValue('verify-rounds', Math.max(3, Math.ceil(ROUNDS / 2)))
/** `--parts single,batch,verify` (default all): which comparisons to run. */
const PARTS = new Set((argString('parts') ?? 'single,batch,verify').split(','))
const SINGLE_OPS = argValue('single-ops', 1500)
const BATCH_OPS = argValue('batch-ops', 150)
/** Appends on 8 connections after each switch, before the measured span. */
const WARM_UP_OPS = argValue('warm-up-ops', 48)
const VERIFY_EVENTS = argValue('verify-events', 100_000)
const APPEND_INTENTS =
  'eventplane.append_intents(text, text, text, bigint, uuid[], text[], text[], smallint[], jsonb, uuid[], uuid[], text[], timestamptz[], boolean)'
/** The chain in the append function (0015, 0018), from its opening comment to "the chain's end". */
const CHAIN_EXPRESSION = /-- the chain:[\s\S]*?-- the chain's end\./

/** The append function's definition with and without the chain, to swap between rounds. */
async function chainSwitch(admin: Sql): Promise<(on: boolean) => Promise<void>> {
  const [row] = await admin<{ def: string }[]>`select pg_get_functiondef(${APPEND_INTENTS}::regprocedure) as def`
  const withChain = row!.def
  if (!CHAIN_EXPRESSION.test(withChain)) throw new Error('the append function has no chain expression to switch off')
  const without = withChain.replace(CHAIN_EXPRESSION, '')
  let current: boolean | undefined
  return async (on) => {
    if (on === current) return
    await admin.unsafe(on ? withChain : without)
    await admin.unsafe(`alter table eventplane.events ${on ? 'enable' : 'disable'} trigger events_chain`)
    current = on
  }
}

const db = await benchDatabase('chain')
try {
  // Bench database only: without the chain no hash is written, so the column may be empty.
  await db.admin`alter table eventplane.events alter column hash drop not null`
  const chain = await chainSwitch(db.admin)
  const store = new PgEventStore(db.connect(ROLES.intentWriter, 8))
  const factories = {
    on: EventFactory.forTenant('chained', { causedBy: 'user:bench' }),
    off: EventFactory.forTenant('bench', { causedBy: 'user:bench' }),
  }

  /** The writers' backends' CPU (ns) so far, by pid: the server's side of an append, less noisy than wall time. */
  const writerBackendsCpu = async (): Promise<Map<number, number>> => {
    const rows = await db.admin<{ pid: number }[]>`select pid from pg_stat_activity
      where datname = current_database() and usename = ${ROLES.intentWriter}`
    return new Map(rows.map((r) => [r.pid, backendCpuNs(r.pid)]))
  }
  /** Server CPU µs per event of each measurement (a backend that connected during it counts whole). */
  const serverUs = new Map<Measurement, number>()
  // Each mode appends to its own streams, which grow over the rounds (so the chain starts from a stored hash).
  const appends = (on: boolean, ops: number, writers: number, size: number, streams: number) => async () => {
    await chain(on)
    const factory = factories[on ? 'on' : 'off']
    const append = (id: string) => {
      const s = { tenant: on ? 'chained' : 'bench', category: 'deployment', id }
      return store.append(
        s,
        Array.from({ length: size }, () => factory.intent(s, 'created', BENCH_DATA)),
      )
    }
    // Not measured: every pool connection runs the function just re-created a few times first. Its compilation
    // and first plans are per backend; an application pays them once per connection, not once per round, and the
    // larger function would pay more of them in each round.
    await measure(WARM_UP_OPS, 8, size, (i) => append(`warm-${size}-${i % 8}`))
    const before = await writerBackendsCpu()
    const m = await measure(ops, writers, size, (i) => append(`s${size}-${i % streams}`))
    let ns = 0
    for (const [pid, cpu] of await writerBackendsCpu()) ns += cpu - (before.get(pid) ?? 0)
    serverUs.set(m, ns / 1000 / m.events)
    process.stderr.write(`    ${on ? 'chain' : 'none'}: server CPU ${(ns / 1000 / m.events).toFixed(1)} µs/event\n`)
    return m
  }
  const results = []
  for (const writers of PARTS.has('single') ? [1, 8] : []) {
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
  if (PARTS.has('batch'))
    results.push(
      await compare(
        'append 100 events: chain vs none',
        0.9,
        BATCH_ROUNDS,
        appends(false, BATCH_OPS, 1, 100, 8),
        appends(true, BATCH_OPS, 1, 100, 8),
      ),
    )
  await chain(true)

  if (PARTS.has('verify')) {
    const verifier = EventFactory.forTenant('verified', { causedBy: 'user:bench' })
    for (let i = 0; i < VERIFY_EVENTS; i += 1000) {
      const s = { tenant: 'verified', category: 'deployment', id: `v${i % 5000}` }
      await store.append(
        s,
        Array.from({ length: Math.min(1000, VERIFY_EVENTS - i) }, () => verifier.intent(s, 'created', BENCH_DATA)),
      )
    }
    await vacuumLog(db.admin)
    const operator = db.connect(ROLES.operator, 2)
    results.push(
      await compare(
        `verify ${VERIFY_EVENTS} events vs reading them`,
        0.5,
        VERIFY_ROUNDS,
        async () => {
          const t = performance.now()
          await operator`select * from eventplane.events where tenant_id = 'verified'
            order by tenant_id, category, stream_id, stream_version`.cursor(500, () => {})
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
  }
  const appendRows = results.filter((r) => r.name.startsWith('append'))
  const server = (ms: Measurement[]) => median(ms.map((m) => serverUs.get(m)!))
  const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`
  for (const r of appendRows) {
    const wall = ratios(r)
    // none ÷ chain per round: 1.0 = the chain costs the server nothing, 0.9 = it adds 11 %.
    const cpu = r.ours.map((m, i) => serverUs.get(r.raw[i]!)! / serverUs.get(m)!)
    const name = r.name.replace(': chain vs none', '')
    console.log(
      `chain cost, ${name}: wall ratio ${median(wall).toFixed(2)} (rounds ${range(wall)}), server CPU ratio ${median(cpu).toFixed(2)} (rounds ${range(cpu)}); server CPU ${server(r.ours).toFixed(1)} vs ${server(r.raw).toFixed(1)} µs/event (the chain ${(server(r.ours) - server(r.raw)).toFixed(1)}); issue 17 wants the wall ratio ≥ 0.90: ${median(wall) >= 0.9 ? 'met' : 'not met'}`,
    )
  }
  console.log(
    `\nbench:chain on ${new Date().toISOString().slice(0, 10)}, PostgreSQL ${(await db.admin`show server_version`)[0]!.server_version}, ${ROUNDS} rounds (the batch ${BATCH_ROUNDS}; median of per-round ratios; raw = chain off)`,
  )
  printTable(results.map(summarize))
} finally {
  await db.drop()
}
