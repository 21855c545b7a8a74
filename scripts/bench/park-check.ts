/**
 * pnpm tsx scripts/bench/park-check.ts --base DIR [--intents 400] [--rounds 6] [--concurrency 8] — a controller
 * runner of this tree against the one in DIR (another commit's `packages/runtime`, its `node_modules` linked to
 * this tree's), in one process, rounds alternating: each round appends `--intents` intents (one stream each,
 * after the runners started: the normal path, no redelivery), hands them to the side's runner as first
 * deliveries (an in-process LiveSource, no NATS: only the runner and PostgreSQL are measured) and times until
 * every one is acknowledged; its controller emits one fact per intent. Reports, per side, the median of the
 * rounds' wall time and CPU (this process's and the database's backends') per intent, and the median of the
 * rounds' new ÷ base ratios. Then, alternated over the same rounds, `--reads` (default 400) reads of one
 * stored event by id, one at a time, as `storedPark` does: `PgEventStore.readEvents` (one statement, the tenant
 * set in it) against the same select in a `withTenant` transaction (begin, set_config, select, commit), its form
 * until 2026-12-01: wall µs per read. Made to measure the stored-park check before every delivery (`storedPark`,
 * docs/benchmarks/journal-2026-12-01.md, 19:30): DIR at a commit without it, or with it on every delivery.
 */
import { resolve } from 'node:path'
import { EventFactory, type RecordedEvent } from '@eventplane/core'
import { PgEventStore, ROLES, withTenant } from '@eventplane/store-pg'
import type { LiveDelivery, LiveSource } from '../../packages/runtime/src/live-source.ts'
import { ControllerRunner } from '../../packages/runtime/src/controller/runner.ts'
import type { Controller } from '../../packages/runtime/src/controller/types.ts'
import { EVENT_COLUMNS } from '../../packages/store-pg/src/sql/event-columns.ts'
import {
  alternatedRounds,
  argString,
  argValue,
  backendCpuNs,
  databaseBackendsCpuNs,
  backendPid,
  benchDatabase,
  cpuUsSince,
  loadAvg,
  median,
} from './lib.ts'

const base = argString('base')
if (base === undefined) throw new Error('usage: park-check.ts --base DIR')
const INTENTS = argValue('intents', 400)
const ROUNDS = argValue('rounds', 6)
const CONCURRENCY = argValue('concurrency', 8)
const READS = argValue('reads', 400)
const Base = (
  (await import(resolve(base, 'packages/runtime/src/controller/runner.ts'))) as {
    ControllerRunner: typeof ControllerRunner
  }
).ControllerRunner
const sides = { base: Base, new: ControllerRunner }
type Side = keyof typeof sides

/** A LiveSource fed by `push`: one subscription, deliveries in the order pushed. */
function pushSource(): { source: LiveSource; push(d: LiveDelivery): void } {
  const queue: LiveDelivery[] = []
  let wake: (() => void) | undefined
  const source: LiveSource = {
    prepare: async () => {},
    open: async (signal) => {
      signal.addEventListener('abort', () => wake?.())
      return {
        async *[Symbol.asyncIterator]() {
          while (!signal.aborted) {
            const d = queue.shift()
            if (d) yield d
            else await new Promise<void>((r) => (wake = r))
          }
        },
        stop: async () => wake?.(),
        closed: new Promise(() => {}),
      }
    },
  }
  return {
    source,
    push(d) {
      queue.push(d)
      wake?.()
    },
  }
}

const load = loadAvg()
const db = await benchDatabase('parkcheck')
try {
  const intents = new PgEventStore(db.connect(ROLES.intentWriter, 4))
  const controller: Controller = {
    name: 'bench',
    categories: ['job'],
    async reconcile(_event, ctx) {
      await ctx.emit(ctx.fact('built', { ok: true }))
    },
  }
  const runners = new Map<Side, { push(d: LiveDelivery): void; stop(): Promise<void> }>()
  for (const side of Object.keys(sides) as Side[]) {
    const { source, push } = pushSource()
    const runner = new sides[side]({
      controller,
      store: new PgEventStore(db.connect(ROLES.factWriter, CONCURRENCY)),
      live: source,
      concurrency: CONCURRENCY,
    })
    await runner.start()
    runners.set(side, { push, stop: () => runner.stop() })
  }
  const backendsCpuNs = () => databaseBackendsCpuNs(db.admin)

  const f = EventFactory.forTenant('bench', { causedBy: 'user:bench' })
  /** Intents recorded now (after the runners started), read back as the bus would deliver them. */
  async function freshIntents(tag: string): Promise<RecordedEvent[]> {
    for (let i = 0; i < INTENTS; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, INTENTS - i) }, (_, j) => {
          const s = { tenant: 'bench', category: 'job', id: `${tag}-${i + j}` }
          return intents.append(s, [f.intent(s, 'run', { n: i + j })])
        }),
      )
    }
    const out: RecordedEvent[] = []
    for (let i = 0; i < INTENTS; i++)
      out.push(...(await intents.readStreamToArray({ tenant: 'bench', category: 'job', id: `${tag}-${i}` })))
    return out
  }

  interface Result {
    wallUs: number
    cpuUs: number
    backendUs: number
  }
  const results = await alternatedRounds(
    Object.keys(sides) as Side[],
    ROUNDS,
    'reverse',
    async (side, round): Promise<Result> => {
      const events = await freshIntents(`${side}${round}`)
      const runner = runners.get(side)!
      let left = events.length
      let done!: () => void
      const all = new Promise<void>((r) => (done = r))
      const settle = (how: string) => () => {
        if (how !== 'ack') throw new Error(`a delivery was ${how}ed`)
        if (--left === 0) done()
      }
      const backend0 = await backendsCpuNs()
      const cpu0 = process.cpuUsage()
      const t0 = performance.now()
      for (const event of events)
        runner.push({
          event,
          deliveryCount: 1,
          redelivered: false,
          ack: settle('ack'),
          nak: settle('nak'),
          term: settle('term'),
        })
      await all
      const wallUs = ((performance.now() - t0) * 1000) / INTENTS
      const cpuUs = cpuUsSince(cpu0) / INTENTS
      const backendUs = ((await backendsCpuNs()) - backend0) / 1000 / INTENTS
      return { wallUs, cpuUs, backendUs }
    },
    (side, round, r) =>
      console.log(
        `round ${round} ${side}: ${r.wallUs.toFixed(0)} µs wall, ${r.cpuUs.toFixed(0)} µs CPU, ${r.backendUs.toFixed(0)} µs backends per intent`,
      ),
  )
  const b = results.get('base')!
  const n = results.get('new')!
  const row = (k: keyof Result) => ({
    base: +median(b.map((r) => r[k])).toFixed(0),
    new: +median(n.map((r) => r[k])).toFixed(0),
    'median new ÷ base': +median(n.map((r, i) => r[k] / b[i]![k])).toFixed(2),
  })
  console.log(
    `load before: ${load}, after: ${loadAvg()}; ${INTENTS} intents × ${ROUNDS} rounds, concurrency ${CONCURRENCY}`,
  )
  console.table({
    'wall µs/intent': row('wallUs'),
    'CPU µs/intent': row('cpuUs'),
    'backends µs/intent': row('backendUs'),
  })
  for (const r of runners.values()) await r.stop()

  // One event read by id, as storedPark does: the same columns both ways, on one connection (its backend's CPU).
  const facts = new PgEventStore(db.connect(ROLES.factWriter, 1))
  const [one] = await freshIntents('read')
  const id = [one!.event_id]
  const reads = {
    statement: () => facts.readEvents('bench', id),
    transaction: () =>
      withTenant(facts.sql, 'bench', (tx) =>
        tx`select ${tx.unsafe(EVENT_COLUMNS)} from eventplane.events e where e.event_id = any(${id}::uuid[])
          and e.tenant_id = ${'bench'} order by e.tx_id, e.global_position`.values(),
      ),
  }
  type Read = keyof typeof reads
  const pid = await backendPid(facts.sql)
  const readResults = await alternatedRounds(Object.keys(reads) as Read[], ROUNDS, 'reverse', async (read) => {
    const backend0 = backendCpuNs(pid)
    const t0 = performance.now()
    for (let i = 0; i < READS; i++) if ((await reads[read]()).length !== 1) throw new Error('not read')
    return {
      wallUs: ((performance.now() - t0) * 1000) / READS,
      backendUs: (backendCpuNs(pid) - backend0) / 1000 / READS,
    }
  })
  const st = readResults.get('statement')!
  const tx = readResults.get('transaction')!
  const readRow = (k: 'wallUs' | 'backendUs') => ({
    statement: +median(st.map((r) => r[k])).toFixed(0),
    transaction: +median(tx.map((r) => r[k])).toFixed(0),
    'median statement ÷ transaction': +median(st.map((r, i) => r[k] / tx[i]![k])).toFixed(2),
  })
  console.log(`one read by id, ${READS} a round (load after: ${loadAvg()})`)
  console.table({ 'wall µs/read': readRow('wallUs'), 'backend µs/read': readRow('backendUs') })
} finally {
  await db.drop()
}
process.exit(0)
