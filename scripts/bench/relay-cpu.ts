/**
 * pnpm tsx scripts/bench/relay-cpu.ts [--events 20000] [--rounds 3] [--sides raw,async,ours] [--window 256]
 *
 * CPU per relayed event, by process, less sensitive to a loaded machine than
 * wall time: this Node process (`process.cpuUsage`), the nats-server and the
 * PostgreSQL backends of the bench database (both from /proc/<pid>/schedstat,
 * nanoseconds on a CPU). Raw `js.publish` of the pre-encoded messages vs a
 * fresh Relay draining the same log, alternating rounds, medians; also the
 * round trips of the relay per 1,000 events (statements sent to PostgreSQL,
 * by kind). `--profile <dir>` writes a V8 CPU profile of each measured round
 * (`<dir>/<side>-<round>.cpuprofile`, the rounds only, not the prefill), for
 * scripts/bench/cpuprofile-summary.ts or Chrome DevTools. Sides: `raw` is nats.js
 * `js.publish`, `async` the relay publisher's technique without the relay
 * (bus-relay.ts `publishAsyncWindowed`), `ours` the relay.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { join } from 'node:path'
import { postgres } from '@eventplane/store-pg/testing'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { vacuumLog } from '@eventplane/store-pg/testing'
import { startNatsServer } from '@eventplane/bus-nats/testing'
import { prefillLog, relayRounds } from './bus-relay.ts'
import { argString, argValue, median, benchDatabase } from './lib.ts'

const EVENTS = argValue('events', 20_000)
const ROUNDS = argValue('rounds', 3)
const WINDOW = argValue('window', 256)
const PROFILE_DIR = argString('profile')
const SIDES = new Set(argString('sides', 'raw,async,ours').split(','))

/** Nanoseconds on a CPU of all of a process's threads (nats-server is multi-threaded); 0 once it is gone. */
const schedNs = (pid: number): number => {
  try {
    let ns = 0
    for (const t of readdirSync(`/proc/${pid}/task`))
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0])
    return ns
  } catch {
    return 0
  }
}

const inspector = PROFILE_DIR === undefined ? undefined : new Session()
if (inspector) {
  mkdirSync(PROFILE_DIR!, { recursive: true })
  inspector.connect()
  await inspector.post('Profiler.enable')
  await inspector.post('Profiler.setSamplingInterval', { interval: 200 })
}
let profiled = 0

const db = await benchDatabase('relaycpu')
const nats = await startNatsServer({ withAuth: false })
try {
  const natsPid = nats.pid!
  const dbName = (await db.admin<{ d: string }[]>`select current_database() as d`)[0]!.d
  const backends = async (): Promise<number[]> =>
    (
      await db.admin<
        { pid: number }[]
      >`select pid from pg_stat_activity where datname = ${dbName} and pid <> pg_backend_pid()`
    ).map((r) => r.pid)
  const pgNs = async (pids: Map<number, number>): Promise<void> => {
    for (const p of await backends()) if (!pids.has(p)) pids.set(p, 0)
    for (const p of pids.keys()) pids.set(p, schedNs(p) || (pids.get(p) ?? 0))
  }
  const queries = new Map<string, number>()
  const counting = db.connect(ROLES.relay, 4)
  // The same pool options plus postgres.js's debug hook: every statement the relay (and its lease session) sends.
  const relaySql = postgres({
    ...counting.options,
    debug: (_conn: number, query: string) => {
      const kind = /relay_checkpoints/.test(query)
        ? 'checkpoint'
        : /from eventplane\.events/.test(query)
          ? 'read'
          : /lease/.test(query)
            ? 'lease'
            : 'other'
      if (counted) queries.set(kind, (queries.get(kind) ?? 0) + 1)
    },
  } as unknown as postgres.Options<Record<string, never>>)
  let counted = false
  process.stderr.write(`prefilling ${EVENTS} events…\n`)
  await prefillLog(new PgEventStore(db.connect(ROLES.intentWriter, 2)), EVENTS)
  await vacuumLog(db.admin)
  const nc = await nats.connect('relay', { name: 'bench-relay-cpu' })
  type Side = 'raw' | 'async' | 'ours'
  const SIDE_ORDER: Side[] = ['raw', 'async', 'ours']
  const samples: Record<Side, { node: number[]; nats: number[]; pg: number[]; rate: number[] }> = {
    raw: { node: [], nats: [], pg: [], rate: [] },
    async: { node: [], nats: [], pg: [], rate: [] },
    ours: { node: [], nats: [], pg: [], rate: [] },
  }
  let side: Side = 'raw'
  let before = { nats: 0, pg: new Map<number, number>() }
  const rounds = await relayRounds({
    relaySql,
    nc,
    events: EVENTS,
    window: WINDOW,
    around: {
      async start(s) {
        side = s
        const pg = new Map<number, number>()
        await pgNs(pg)
        before = { nats: schedNs(natsPid), pg }
        counted = s === 'ours'
        await inspector?.post('Profiler.start')
      },
      async end(m) {
        counted = false
        if (inspector) {
          const { profile } = await inspector.post('Profiler.stop')
          writeFileSync(join(PROFILE_DIR!, `${side}-${++profiled}.cpuprofile`), JSON.stringify(profile))
        }
        const natsUs = (schedNs(natsPid) - before.nats) / 1000 / EVENTS
        const after = new Map(before.pg)
        await pgNs(after)
        let pg = 0
        for (const [p, ns] of after) pg += ns - (before.pg.get(p) ?? 0)
        const s = samples[side]
        s.node.push((m.cpuMs! * 1000) / m.events)
        s.nats.push(natsUs)
        s.pg.push(pg / 1000 / EVENTS)
        s.rate.push(m.events / m.seconds)
      },
    },
  })
  for (let r = 0; r < ROUNDS; r++) {
    if (SIDES.has('raw')) await rounds.raw()
    if (SIDES.has('async')) await rounds.rawAsync()
    if (SIDES.has('ours')) await rounds.ours()
    process.stderr.write(`  round ${r + 1}/${ROUNDS}\n`)
  }
  const rows = SIDE_ORDER.filter((s) => SIDES.has(s)).map((s) => ({
    side: s,
    'events/s': median(samples[s].rate).toFixed(0),
    'node µs/event': median(samples[s].node).toFixed(1),
    'nats-server µs/event': median(samples[s].nats).toFixed(1),
    'postgres µs/event': median(samples[s].pg).toFixed(1),
    'node runs': samples[s].node.map((n) => n.toFixed(0)).join(' '),
  }))
  console.log(`relay-cpu: ${EVENTS} events × ${ROUNDS} rounds, window ${WINDOW}, medians`)
  console.table(rows)
  // Same-run ratios: each relay round against the baseline rounds just before it.
  for (const base of ['raw', 'async'] as const) {
    if (!SIDES.has(base) || !SIDES.has('ours')) continue
    const r = samples.ours.rate.map((ours, i) => ours / samples[base].rate[i]!)
    console.log(`ours ÷ ${base}: median ${median(r).toFixed(2)} (rounds ${r.map((x) => x.toFixed(2)).join(' ')})`)
  }
  const perK = (n: number): string => ((n * 1000) / (EVENTS * ROUNDS)).toFixed(2)
  if (SIDES.has('ours'))
    console.log(
      `relay statements per 1,000 events: ${[...queries].map(([k, n]) => `${k} ${perK(n)}`).join(', ') || 'none'}`,
    )
} finally {
  await nats.stop()
  await db.drop()
}
