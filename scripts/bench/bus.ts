/**
 * pnpm bench:bus — the NATS side of eventplane against bare baselines built in
 * the same run, alternating rounds; prints markdown tables.
 *
 *   pnpm bench:bus [--rounds 5] [--events 50000] [--latency-seconds 30] [--rates 1000,5000] [--appenders 8]
 *                  [--requests 2000] [--parts relay,latency,gateway] [--wake notify|poll] [--topology split|shared]
 *                  [--subscribers parent|child] [--watcher child|parent]
 *
 * 1. relay throughput flat out: a fresh Relay drains `--events` from the log
 *    into a fresh EVENTPLANE stream vs raw `js.publish(subject, bytes, { msgID })`
 *    of the same pre-encoded messages with the same in-flight window (target ≥ 0.8×);
 * 2. append → subscriber at steady rates (`--rates`, events/s): a fixed pool
 *    of `--appenders` loops appends on a wall-clock schedule, ceil(rate / 1000)
 *    events per append, vs INSERT + trigger NOTIFY + LISTEN/publish + plain
 *    pull consumer; p50/p99 of each, target at the first rate: p99 ≤ 1.5× bare;
 * 3. gateway submitIntent vs direct PgEventStore.append at concurrency 1 and 16.
 *
 * With parts 1 and 2, a "relay throughput" table gives the steady rows and
 * the flat-out row side by side.
 *
 * Uses its own database (benchDatabase) and its own nats-server; both
 * are removed at the end, also on failure, Ctrl-C or SIGTERM.
 */
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { EventplaneError } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { vacuumLog } from '@eventplane/store-pg/testing'
import { startNatsServer } from '@eventplane/bus-nats/testing'
import { tenantInboxPrefix } from '@eventplane/bus-nats'
import { benchGateway } from './bus-gateway.ts'
import { type LatencyComparison, benchLatency } from './bus-latency.ts'
import { pathRows } from './bus-path.ts'
import type { LatencyResult } from './bus-tracker.ts'
import { benchRelayThroughput, prefillLog } from './bus-relay.ts'
import {
  argString,
  type Comparison,
  type Measurement,
  argList,
  argValue,
  median,
  percentile,
  printTable,
  rate,
  ratios,
  benchDatabase,
} from './lib.ts'

const ROUNDS = argValue('rounds', 5)
const EVENTS = argValue('events', 50_000)
const LATENCY_SECONDS = argValue('latency-seconds', 30)
const RATES = argList('rates', [argValue('rate', 1000), 5000])
const APPENDERS = argValue('appenders', 8)
const REQUESTS = argValue('requests', 2000)
const RELAY_TARGET = 0.8
/** Ours ÷ bare p99 at the first rate. */
const P99_TARGET_RATIO = 1.5
const PARTS = new Set(argString('parts', 'relay,latency,gateway').split(','))
/** How the latency part's relay learns of appends: `--wake poll` or the default coalesced NOTIFY. */
const WAKE = argString('wake', 'notify') === 'poll' ? 'poll' : 'notify'
/**
 * `--topology split` (default): the relay, and bare's LISTEN + publisher, each in a process of its own, as in
 * production; `shared`: both in this process with the appenders and the subscribers (the bench before 2026-11-30 13:40).
 */
const TOPOLOGY = argString('topology', 'split') === 'shared' ? 'shared' : 'split'
/** `--subscribers child`: in the split topology, each pipeline's subscriber in a process of its own too. */
const SUBSCRIBERS = argString('subscribers', 'parent') === 'child' ? 'child' : 'parent'
/**
 * `--watcher child` (default): the core subscription that times the `bus` stage in a process of its own (both
 * pipelines); `parent`: in this process, where ours' appenders (more client CPU per event than bare's INSERT)
 * delayed what it saw by 3–4 ms (docs/benchmarks/journal-2026-11-30-pm.md, 13:40–14:30 "The bench's topology").
 */
const WATCHER = argString('watcher', 'child') === 'parent' ? 'parent' : 'child'

/** Median CPU time of this process per event (µs), '–' when not recorded. */
function cpuPerOp(side: Measurement[]): string {
  const per = side.filter((m) => m.cpuMs !== undefined).map((m) => (m.cpuMs! * 1000) / m.events)
  return per.length === 0 ? '–' : median(per).toFixed(0)
}

const ms = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '–')

function throughputRow(c: Comparison): Record<string, string | number | boolean> {
  const lat = (side: Measurement[], p: number) => ms(median(side.map((m) => percentile(m.latenciesMs, p))))
  const hasTarget = Number.isFinite(c.target)
  const each = ratios(c)
  const ratio = median(each)
  return {
    benchmark: c.name,
    'baseline /s': Math.round(median(c.raw.map(rate))),
    'ours /s': Math.round(median(c.ours.map(rate))),
    'baseline p50 ms': lat(c.raw, 50),
    'ours p50 ms': lat(c.ours, 50),
    'baseline p99 ms': lat(c.raw, 99),
    'ours p99 ms': lat(c.ours, 99),
    'baseline CPU µs/op': cpuPerOp(c.raw),
    'ours CPU µs/op': cpuPerOp(c.ours),
    'median ratio': +ratio.toFixed(2),
    'ratio range': `${Math.min(...each).toFixed(2)}–${Math.max(...each).toFixed(2)}`,
    target: hasTarget ? `≥ ${c.target}` : '–',
    meets: hasTarget ? ratio >= c.target : '–',
  }
}

function latencyRow(
  name: string,
  r: LatencyResult,
  bareP99: number | undefined,
): Record<string, string | number | boolean> {
  const p99 = percentile(r.latenciesMs, 99)
  const target = bareP99 !== undefined
  return {
    pipeline: name,
    'p50 ms': ms(percentile(r.latenciesMs, 50)),
    'p90 ms': ms(percentile(r.latenciesMs, 90)),
    'p99 ms': ms(p99),
    'max ms': ms(r.latenciesMs.length === 0 ? Number.NaN : r.latenciesMs.reduce((a, b) => Math.max(a, b))),
    'append p50 ms': ms(percentile(r.appendMs, 50)),
    'append p99 ms': ms(percentile(r.appendMs, 99)),
    'on bus p50 ms': ms(percentile(r.busMs, 50)),
    'on bus p99 ms': ms(percentile(r.busMs, 99)),
    sent: r.sent,
    received: r.received,
    skipped: r.skipped,
    duplicates: r.duplicates,
    errors: r.errors,
    unexpected: r.unexpected,
    'appends late >1 ms': `${r.late} (≤ ${r.lateMs.toFixed(0)} ms)`,
    'other-DB xacts': `${((100 * r.holdback.held) / Math.max(1, r.holdback.samples)).toFixed(0)}% of samples, ≤ ${r.holdback.longestMs.toFixed(0)} ms`,
    'p99 ÷ bare': target ? (p99 / bareP99).toFixed(2) : '–',
    target: target ? `p99 ≤ ${P99_TARGET_RATIO}× bare, 0 skipped` : '–',
    meets: target ? p99 <= P99_TARGET_RATIO * bareP99 && r.skipped === 0 : '–',
  }
}

const perSecond = (r: LatencyResult): number => (r.received * 1000) / Math.max(1, r.elapsedMs)
const cpuPerEvent = (r: LatencyResult): string => ((r.cpuMs * 1000) / Math.max(1, r.received)).toFixed(0)

/** A steady-rate row: what reached the subscriber per second of the run, and the latency, ours and bare. */
function steadyRow(rate: number, batch: number, r: LatencyComparison): Record<string, string | number | boolean> {
  const p = (x: LatencyResult, q: number) => ms(percentile(x.latenciesMs, q))
  return {
    load: `steady ${rate} ev/s (${batch}/append)`,
    'baseline ev/s': Math.round(perSecond(r.bare)),
    'ours ev/s': Math.round(perSecond(r.ours)),
    ratio: (perSecond(r.ours) / perSecond(r.bare)).toFixed(2),
    'baseline p50 / p99 ms': `${p(r.bare, 50)} / ${p(r.bare, 99)}`,
    'ours p50 / p99 ms': `${p(r.ours, 50)} / ${p(r.ours, 99)}`,
    'CPU µs/event (baseline → ours)': `${cpuPerEvent(r.bare)} → ${cpuPerEvent(r.ours)}`,
    'skipped (ours, baseline)': `${r.ours.skipped}, ${r.bare.skipped}`,
  }
}

/** The flat-out row: the relay draining a backlog vs raw js.publish of the same pre-encoded messages. */
function flatOutRow(c: Comparison): Record<string, string | number | boolean> {
  const each = ratios(c)
  return {
    load: `flat out (drain ${EVENTS} events)`,
    'baseline ev/s': Math.round(median(c.raw.map(rate))),
    'ours ev/s': Math.round(median(c.ours.map(rate))),
    ratio: `${median(each).toFixed(2)} (${Math.min(...each).toFixed(2)}–${Math.max(...each).toFixed(2)})`,
    'baseline p50 / p99 ms': '–',
    'ours p50 / p99 ms': '–',
    'CPU µs/event (baseline → ours)': `${cpuPerOp(c.raw)} → ${cpuPerOp(c.ours)}`,
    'skipped (ours, baseline)': '0, 0',
  }
}

function natsJsVersion(): string {
  try {
    const pkg = JSON.parse(
      readFileSync(new URL('../../node_modules/@nats-io/jetstream/package.json', import.meta.url), 'utf8'),
    ) as { version: string }
    return pkg.version
  } catch {
    return '?'
  }
}

async function main(): Promise<void> {
  const load = loadavg()
    .map((n) => n.toFixed(2))
    .join(' ')
  const db = await benchDatabase('bus')
  const nats = await startNatsServer({ withAuth: false }).catch(async (e: unknown) => {
    await db.drop()
    throw e
  })
  try {
    const relaySql = db.connect(ROLES.relay, 4)
    const pubNc = await nats.connect('relay', { name: 'bench-relay' })
    const subNc = await nats.connect('operator', { name: 'bench-subscriber' })
    const serverVersion = pubNc.info?.version ?? '?'

    let relay: Awaited<ReturnType<typeof benchRelayThroughput>> | undefined
    if (PARTS.has('relay')) {
      process.stderr.write(`prefilling ${EVENTS} events…\n`)
      await prefillLog(new PgEventStore(db.connect(ROLES.intentWriter, 2)), EVENTS)
      await vacuumLog(db.admin)
      process.stderr.write('1. relay throughput\n')
      relay = await benchRelayThroughput({ relaySql, nc: pubNc, events: EVENTS, rounds: ROUNDS, target: RELAY_TARGET })
    }

    const latencies: { rate: number; batch: number; result: LatencyComparison }[] = []
    for (const rate of PARTS.has('latency') ? RATES : []) {
      const batch = Math.ceil(rate / 1000)
      process.stderr.write(
        `2. append → subscriber at ${rate} events/s (${APPENDERS} appenders, ${batch} per append) for ${LATENCY_SECONDS} s each\n`,
      )
      const result = await benchLatency({
        admin: db.admin,
        rawSql: db.connect('postgres' as never, 8),
        listenSql: db.connect('postgres' as never, 1),
        writerSql: db.connect(ROLES.intentWriter, 8),
        relaySql,
        relayNc: pubNc,
        subNc,
        busNc: await nats.connect('operator', { name: 'bench-bus-watch' }),
        pace: { rate, batch, appenders: APPENDERS },
        seconds: LATENCY_SECONDS,
        segments: Math.max(1, Math.round(LATENCY_SECONDS / 10)),
        warmupSeconds: 1,
        wake: WAKE,
        topology: TOPOLOGY,
        subscribers: SUBSCRIBERS,
        watcher: WATCHER,
        natsUrl: nats.url,
        relayUrl: db.roleUrl(ROLES.relay),
        adminUrl: db.url,
      })
      latencies.push({ rate, batch, result })
    }

    let gateway: Comparison[] = []
    if (PARTS.has('gateway')) {
      process.stderr.write('3. gateway request throughput\n')
      gateway = await benchGateway({
        gatewaySql: db.connect(ROLES.intentWriter, 16),
        directSql: db.connect(ROLES.intentWriter, 16),
        gatewayNc: await nats.connect('gateway', { name: 'bench-gateway' }),
        // The gateway answers a tenant only in its own reply space: `_INBOX_<tenant>` on a plain server.
        clientNc: await nats.connect('operator', { name: 'bench-client', inboxPrefix: tenantInboxPrefix('benchgw') }),
        requests: REQUESTS,
        rounds: ROUNDS,
        concurrency: [1, 16],
      })
    }

    const pg = (await db.admin`show server_version`)[0]!.server_version as string
    console.log(
      `\nbench:bus on ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, PostgreSQL ${pg}, nats-server ${serverVersion}, ` +
        `nats.js ${natsJsVersion()}; ${ROUNDS} rounds (median of per-round ratios), load average at start ${load}`,
    )
    const throughput = [
      ...(relay ? [throughputRow(relay), throughputRow(relay.againstAsync)] : []),
      ...gateway.map(throughputRow),
    ]
    if (throughput.length > 0) {
      console.log(`\nthroughput (relay: ${EVENTS} events per round; gateway: ${REQUESTS} requests per round)`)
      printTable(throughput)
      if (relay)
        console.log(
          `\nrelay rounds checked: each raw and relay round left exactly ${EVENTS} messages in a fresh EVENTPLANE stream, with 0 duplicate acks.`,
        )
    }
    for (const [k, { rate, batch, result }] of latencies.entries()) {
      console.log(
        `\nappend → subscriber at ${rate} events/s (${APPENDERS} appenders, ${batch} event(s) per append), ` +
          `${LATENCY_SECONDS} s per pipeline (alternating slices, after 1 s warm-up); topology ${TOPOLOGY}` +
          (TOPOLOGY === 'split'
            ? ` (relay / bare publisher each in a child process; subscribers in ${SUBSCRIBERS === 'child' ? 'a child process each' : 'this process'}; bus watcher in ${WATCHER === 'child' ? 'a child process' : 'this process'})`
            : ' (one process)'),
      )
      const bareP99 = percentile(result.bare.latenciesMs, 99)
      printTable([
        latencyRow(
          WAKE === 'poll'
            ? 'ours: append → Relay polling every 2 ms → JetStream → subscribe()'
            : 'ours: append, then a coalesced NOTIFY → Relay → JetStream → subscribe()',
          result.ours,
          k === 0 ? bareP99 : undefined,
        ),
        latencyRow('bare: INSERT → trigger NOTIFY → LISTEN + js.publish → pull consumer', result.bare, undefined),
      ])
      console.log(`\nours, where each event's time went (${result.ours.path.events} events traced; see bus-path.ts)`)
      printTable(pathRows(result.ours.path))
      if (result.ours.skipped > 0 || result.bare.skipped > 0) process.exitCode = 1
    }
    if (latencies.length > 0 || relay) {
      console.log('\nrelay throughput: steady (the append → subscriber runs above) and flat out (part 1)')
      printTable([
        ...latencies.map(({ rate, batch, result }) => steadyRow(rate, batch, result)),
        ...(relay ? [flatOutRow(relay)] : []),
      ])
    }
  } finally {
    await nats.stop()
    await db.drop()
  }
}

main().catch((e: unknown) => {
  // A typed error (a missing nats-server, PostgreSQL down) says what to do in one line; anything else needs its stack.
  const detail = e instanceof EventplaneError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e)
  console.error(`bench:bus failed: ${detail}`)
  process.exitCode = 1
})
