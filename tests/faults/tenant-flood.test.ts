import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { setPriority } from 'node:os'
import { fileURLToPath } from 'node:url'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { EventFactory, isEventplaneError } from '@eventplane/core'
import { submitIntent } from '@eventplane/bus-nats'
import type { NatsConnection } from '@nats-io/transport-node'
import { spawnServiceProcess } from '../../packages/bus-nats/test/fixtures.ts'
import { useFaultSystem } from './support/system.ts'

const FLOOD_BIN = fileURLToPath(new URL('./support/flood-client.ts', import.meta.url))
/** globex's steady rate. */
const RATE_PER_SECOND = 50
/** globex at rest is measured this long before the flood and again after it. */
const IDLE_MS = 4_000
const MAX_RSS_MB = 250
/** Measurements of the latency comparison before it fails (see the test). */
const ATTEMPTS = 3
/**
 * What the flood may add to globex's p99: 3× its p99 at rest, or this many milliseconds, whichever is more.
 * On two cores that also run nats-server, PostgreSQL and both clients, carrying acme's flood (~1,250 requests
 * and up to 22 MB/s of refused payloads a second through nats-server and the gateway) adds to globex's p99
 * whatever the gateway does with them, and how much depends on the machine: 20–27 ms against 4.5–7.8 ms at rest
 * on one quiet machine, 41–191 ms against 10–15 ms on another (2026-11-30, the code before and after that day's
 * changes alike; docs/testing.md). Without admission globex's p99 reaches seconds (8,654 ms, RSS 357 MB).
 */
const FLOOD_SLACK_MS = 200

/** Resident set size of process `pid` in MiB, from /proc. */
function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'))
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? Number.NaN) / 1024
}

function p99(samples: readonly number[]): number {
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!
}

interface Steady {
  latencies: number[]
  failures: string[]
}

/**
 * globex submitting at a steady rate, open loop on the wall clock (a slow
 * reply never delays the next request), for `ms` or until `until` resolves.
 */
async function steadyGlobex(nc: NatsConnection, stop: { ms?: number; until?: Promise<unknown> }): Promise<Steady> {
  const factory = EventFactory.forTenant('globex', { causedBy: 'user:steady' })
  const result: Steady = { latencies: [], failures: [] }
  const inFlight: Promise<void>[] = []
  let done = false
  void stop.until?.then(() => (done = true))
  const started = performance.now()
  for (let i = 0; !done && (stop.ms === undefined || performance.now() - started < stop.ms); i++) {
    const wait = started + (i * 1000) / RATE_PER_SECOND - performance.now()
    if (wait > 0) await sleep(wait) // pacing, not ordering
    const event = factory.intent({ category: 'steady', id: `s-${i % 8}` }, 'steady', { n: i })
    const sent = performance.now()
    inFlight.push(
      submitIntent(nc, event, { timeoutMs: 30_000 }).then(
        () => void result.latencies.push(performance.now() - sent),
        (e: unknown) => void result.failures.push(isEventplaneError(e) ? e.code : String(e)),
      ),
    )
  }
  await Promise.all(inFlight)
  return result
}

describe('faults: one tenant floods the gateway, another keeps its latency', () => {
  const sys = useFaultSystem('ep_fault_flood')

  /**
   * One measurement: globex at rest, then during a full flood by acme (a new
   * flood client, started and connected beforehand), then at rest again.
   */
  async function measure(pid: number, globex: NatsConnection) {
    // acme's own client, in its own process (its CPU is not the test's), with its own creds:
    // 1,000 small / 200 large requests outstanding at every moment, each resent as soon as answered.
    const flood = spawnServiceProcess(FLOOD_BIN, 'acme flood', {
      FLOOD_TENANT: 'acme',
      FLOOD_NATS_URL: sys.env.server.url,
      FLOOD_CREDS: sys.env.server.credentials.acme!.creds,
      FLOOD_SMALL: '10000',
      FLOOD_WINDOW_SMALL: '1000',
      FLOOD_LARGE: '1500',
      FLOOD_LARGE_BYTES: String(60 * 1024),
      FLOOD_WINDOW_LARGE: '200',
    })
    sys.defer(() => flood.kill())
    // acme's client stands for machines of acme's: on this two-core machine its own CPU would otherwise be taken
    // from the gateway, nats-server and globex's client, which is not the gateway's fairness. At the lowest
    // priority it still keeps its windows full (a resent request is all it does), so the gateway gets the whole flood.
    setPriority(flood.process.pid!, 19)
    await flood.waitForLog('flood ready')
    const idleBefore = await steadyGlobex(globex, { ms: IDLE_MS })
    const idleRss = rssMb(pid)
    let maxRss = idleRss
    const sampler = setInterval(() => (maxRss = Math.max(maxRss, rssMb(pid))), 50)
    flood.process.kill('SIGUSR1')
    const flooded = await steadyGlobex(globex, { until: flood.waitForLog('flood done', 120_000) }).finally(() =>
      clearInterval(sampler),
    )
    const idleAfter = await steadyGlobex(globex, { ms: IDLE_MS })
    const idle = [...idleBefore.latencies, ...idleAfter.latencies]
    return {
      idle: { requests: idle.length, p99_ms: +p99(idle).toFixed(2) },
      flood: { requests: flooded.latencies.length, p99_ms: +p99(flooded.latencies).toFixed(2) },
      gateway_rss_mb: { idle: Math.round(idleRss), max: Math.round(maxRss) },
      acme: flood.logs
        .filter((l) => l.msg === 'flood phase done')
        .map(({ phase, ms, outcomes }) => ({ phase, ms, outcomes })),
      globex_failures: [...idleBefore.failures, ...flooded.failures, ...idleAfter.failures],
    }
  }

  test(`acme floods 10,000 intents then 1,500 × 60 KiB: globex's p99 stays within 3× its idle p99 (or + ${FLOOD_SLACK_MS} ms), none of its requests fails, the gateway stays under ${MAX_RSS_MB} MB`, {
    timeout: 400_000,
  }, async (t) => {
    const gateway = sys.spawn('gateway') // the default limits
    await gateway.waitForLog('gateway serving')
    const pid = gateway.process.pid!
    const globex = await sys.client('globex')
    await steadyGlobex(globex, { ms: 1000 }) // warm-up: connections, JIT, PostgreSQL's plans
    // Other work on this shared machine (other test files, other people's runs) can land in either
    // window and swing a p99 either way; the latency comparison is measured again, at most three
    // times, when it fails. Failed globex requests and the gateway's memory must hold in every run.
    const runs = []
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      const figures = await measure(pid, globex)
      runs.push(figures)
      t.diagnostic(`run ${attempt}: ${JSON.stringify(figures)}`)
      assert.deepEqual(figures.globex_failures, [], 'globex fails nothing, at rest or during the flood')
      assert.ok(figures.flood.requests >= 5 * RATE_PER_SECOND, 'the flood lasted long enough to measure')
      assert.ok(figures.gateway_rss_mb.max < MAX_RSS_MB, `gateway RSS reached ${figures.gateway_rss_mb.max} MB`)
      if (figures.flood.p99_ms <= Math.max(3 * figures.idle.p99_ms, figures.idle.p99_ms + FLOOD_SLACK_MS)) return
    }
    assert.fail(
      `globex p99 under the flood over 3× its idle p99 and over it + ${FLOOD_SLACK_MS} ms in every run: ${runs.map((r) => `${r.flood.p99_ms} vs ${r.idle.p99_ms} ms`).join('; ')}`,
    )
  })
})
