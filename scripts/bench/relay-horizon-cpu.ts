/**
 * pnpm tsx scripts/bench/relay-horizon-cpu.ts [--rounds 5] [--seconds 8] [--rates 1000,5000] [--appenders 8]
 *   [--variants xmin,exact,gated] [--flat 20000]
 * — what the relay's read pays for 0018's session look-up with concurrent writers (log_horizon as of 0022).
 *
 * A running Relay on its own nats-server; `--appenders` loops append on a wall-clock schedule at each rate
 * (ceil(rate / 1000) events per append, as bench:bus), then wait until the relay has published them all.
 * Measured per round: the CPU of every backend of the relay role in this database (/proc/<pid>/schedstat:
 * the read connections and the wake connection) per event relayed, and, counted inside log_horizon with two
 * sequences, how many reads called it and how many of those took the look-up (pg_stat_get_activity).
 * Variants, alternated each round (order rotated): `xmin` = the relay asks for the exact horizon on its
 * first read only (its reads after it: `tx_id < eventplane.snapshot_horizon(…)`, 0020), `exact` = every
 * read calls log_horizon (the branch before the gate, in today's scalar-subquery form), `gated` = the relay's
 * default (`horizonLookupMs`). `--flat N`: also a
 * flat-out drain of N prefilled events (no concurrent writers), per variant, events/s and backend µs/event.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { EventFactory } from '@eventplane/core'
import { MIGRATIONS_DIR, PgEventStore, ROLES } from '@eventplane/store-pg'
import { vacuumLog } from '@eventplane/store-pg/testing'
import { subscribe as onChannel } from 'node:diagnostics_channel'
import { RELAY_TRACE, type RelayHorizonTrace, Relay } from '@eventplane/bus-nats'
import { startNatsServer } from '@eventplane/bus-nats/testing'
import { prefillLog } from './bus-relay.ts'
import {
  BENCH_DATA,
  alternatedRounds,
  argList,
  argString,
  argValue,
  backendCpuNs,
  benchDatabase,
  loadAvg,
  median,
} from './lib.ts'

const ROUNDS = argValue('rounds', 5)
const SECONDS = argValue('seconds', 8)
const RATES = argList('rates', [1000, 5000])
const APPENDERS = argValue('appenders', 8)
const FLAT = argValue('flat', 0)
const VARIANTS = argString('variants', 'xmin,exact,gated').split(',')

// The current log_horizon (0022: 0018's look-up with 0020's floor, ended xids without rows passed by one predicate), counting its
// calls and its look-ups (nextval: not rolled back, a few µs).
const COUNTED_BODY = readFileSync(join(MIGRATIONS_DIR, '0022_ended_without_log_rows_one_predicate.sql'), 'utf8')
  .replace('v_xid xid8;\nBEGIN\n', "v_xid xid8;\nBEGIN\n  PERFORM nextval('public.bench_calls');\n")
  .replace('  SELECT d.oid INTO v_db', "  PERFORM nextval('public.bench_lookups');\n  SELECT d.oid INTO v_db")
if (!COUNTED_BODY.includes('bench_lookups') || !COUNTED_BODY.includes('bench_calls'))
  throw new Error('0022 changed: update the counters')

/** The relay option per variant (undefined: the default). */
const LOOKUP_MS: Record<string, number | undefined> = { xmin: Number.MAX_SAFE_INTEGER, exact: 0, gated: undefined }

/** One kept round of one variant: relay backends µs per event, reads and calls per 1,000 events, events/s. */
interface Sample {
  us: number
  evs: number
  callsPerK: number
  lookupsPerK: number
  readsPerK?: number
  progress: string
}

const reads = { all: 0, exact: 0 }
onChannel(RELAY_TRACE.horizon.name, (m) => {
  reads.all++
  if ((m as RelayHorizonTrace).exact) reads.exact++
})
const db = await benchDatabase('relay_horizon')
const nats = await startNatsServer({ withAuth: false })
console.log(`load at start ${loadAvg()}`)
try {
  await db.admin`create sequence public.bench_calls`
  await db.admin`create sequence public.bench_lookups`
  await db.admin`grant usage on sequence public.bench_calls, public.bench_lookups to public`
  await db.admin.unsafe(COUNTED_BODY)
  const counters = async () => {
    const [r] = await db.admin<{ calls: string; lookups: string }[]>`
      select (select last_value - (not is_called)::int from public.bench_calls)::text as calls,
             (select last_value - (not is_called)::int from public.bench_lookups)::text as lookups`
    return { calls: Number(r!.calls), lookups: Number(r!.lookups) }
  }
  const relayPids = async () =>
    (
      await db.admin<{ pid: number }[]>`
        select pid from pg_stat_activity where datname = current_database() and usename = ${ROLES.relay}`
    ).map((r) => r.pid)
  /** Counts the CPU of backends `pids` from now: the returned function gives the ns used since (one gone counts 0). */
  const backendsCpu = (pids: number[]): (() => number) => {
    const read = (pid: number): number | undefined => {
      try {
        return backendCpuNs(pid)
      } catch {
        return undefined
      }
    }
    const before = pids.map(read)
    return () =>
      pids.reduce((ns, pid, i) => {
        const [b, a] = [before[i], read(pid)]
        return b === undefined || a === undefined ? ns : ns + a - b
      }, 0)
  }
  const nc = await nats.connect()
  // One pool for every relay, all of its connections open before the first pid look-up.
  const relaySql = db.connect(ROLES.relay, 4)
  await Promise.all(Array.from({ length: 4 }, () => relaySql`select pg_sleep(0.05)`))
  const writer = new PgEventStore(db.connect(ROLES.intentWriter, APPENDERS))
  const f = EventFactory.forTenant('benchhz', { causedBy: 'user:bench' })

  /** Each run's kept samples, in the order the table prints them. */
  const results = new Map<string, Sample[]>()
  /** Runs `VARIANTS` in rotated order, round 0 a warm-up; each variant's samples under `key(variant)`. */
  const rounds = async (key: (variant: string) => string, run: (variant: string, round: number) => Promise<Sample>) => {
    const kept = await alternatedRounds(VARIANTS, ROUNDS, 'rotate', run, (variant, round, r) => {
      process.stderr.write(`  ${key(variant)} ${round}: ${r.progress}\n`)
    })
    for (const [variant, samples] of kept) results.set(key(variant), samples)
  }
  const start = async (variant: string) => {
    const relay = new Relay({
      sql: relaySql,
      nc,
      name: 'bench',
      horizonLookupMs: LOOKUP_MS[variant],
    })
    relay.start()
    while (relay.state !== 'active') await sleep(10)
    return relay
  }
  const caughtUp = async (relay: Relay, published: number) => {
    while (relay.stats.published < published) await sleep(5)
  }

  if (FLAT > 0) {
    process.stderr.write(`prefilling ${FLAT} events…\n`)
    await prefillLog(new PgEventStore(db.connect(ROLES.intentWriter, 2)), FLAT)
    await vacuumLog(db.admin)
    await rounds(
      (variant) => `flat-out ${variant}`,
      async (variant, round) => {
        const relay = new Relay({
          sql: relaySql,
          nc,
          name: `flat_${variant}_${round}`,
          horizonLookupMs: LOOKUP_MS[variant],
        })
        const c0 = await counters()
        const t0 = performance.now()
        relay.start()
        while (relay.state !== 'active') await sleep(2)
        const cpu = backendsCpu(await relayPids())
        await caughtUp(relay, FLAT)
        const ms = performance.now() - t0
        const ns = cpu()
        const c1 = await counters()
        await relay.stop()
        return {
          us: ns / 1000 / FLAT,
          evs: FLAT / (ms / 1000),
          callsPerK: ((c1.calls - c0.calls) * 1000) / FLAT,
          lookupsPerK: ((c1.lookups - c0.lookups) * 1000) / FLAT,
          progress: `${(ns / 1000 / FLAT).toFixed(1)} µs/ev ${(FLAT / (ms / 1000)).toFixed(0)} ev/s`,
        }
      },
    )
  }

  let seq = 0
  for (const rate of RATES) {
    const batch = Math.ceil(rate / 1000)
    const appends = Math.round((rate / batch) * SECONDS)
    await rounds(
      (variant) => `${rate} ev/s ${variant}`,
      async (variant) => {
        const relay = await start(variant)
        const pids = await relayPids()
        const c0 = await counters()
        const r0 = { ...reads }
        const cpu = backendsCpu(pids)
        const base = relay.stats.published
        const interval = 1000 / (rate / batch)
        const t0 = performance.now()
        let next = 0
        await Promise.all(
          Array.from({ length: APPENDERS }, async () => {
            for (let i = next++; i < appends; i = next++) {
              const wait = t0 + i * interval - performance.now()
              if (wait > 0) await sleep(wait)
              const s = { tenant: 'benchhz', category: 'deployment', id: `s${seq++ % 200}` }
              await writer.append(
                s,
                Array.from({ length: batch }, () => f.intent(s, 'scaled', BENCH_DATA)),
              )
            }
          }),
        )
        const appendMs = performance.now() - t0
        await caughtUp(relay, base + appends * batch)
        const ns = cpu()
        const c1 = await counters()
        await relay.stop()
        const events = appends * batch
        return {
          readsPerK: ((reads.all - r0.all) * 1000) / events,
          us: ns / 1000 / events,
          evs: events / (appendMs / 1000),
          callsPerK: ((c1.calls - c0.calls) * 1000) / events,
          lookupsPerK: ((c1.lookups - c0.lookups) * 1000) / events,
          progress:
            `relay backends ${(ns / 1000 / events).toFixed(1)} µs/ev, ` +
            `reads ${reads.all - r0.all} (exact ${reads.exact - r0.exact}), ` +
            `log_horizon calls ${c1.calls - c0.calls}, look-ups ${c1.lookups - c0.lookups}, load ${loadAvg()}`,
        }
      },
    )
  }
  const [sessions] = await db.admin<{ n: number }[]>`select count(*)::int as n from pg_stat_activity`
  console.log(
    `\n| run | relay backends µs/event (median; rounds) | reads /1k ev | log_horizon calls /1k ev | look-ups /1k ev | ev/s |`,
  )
  console.log('| --- | --- | --- | --- | --- | --- |')
  for (const [k, samples] of results) {
    const med = (of: (r: Sample) => number) => median(samples.map(of)).toFixed(0)
    const us = samples.map((r) => r.us)
    console.log(
      `| ${k} | ${median(us).toFixed(1)} (${us.map((v) => v.toFixed(0)).join(' ')}) | ${samples[0]!.readsPerK === undefined ? '-' : med((r) => r.readsPerK!)} | ${med((r) => r.callsPerK)}` +
        ` | ${med((r) => r.lookupsPerK)} | ${med((r) => r.evs)} |`,
    )
  }
  console.log(`sessions in pg_stat_activity at the end: ${sessions!.n}; load at end ${loadAvg()}`)
  await nc.close()
} finally {
  await nats.stop()
  await db.drop()
}
process.exit(0)
