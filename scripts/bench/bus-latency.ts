/**
 * bench:bus part 2 — append → subscriber latency at a fixed rate, for
 * eventplane's pipeline and for a bare one built in the same run:
 *
 *   ours: PgEventStore.append → statement NOTIFY → running Relay (gap-safe
 *         read, ordered publish, checkpoint) → EVENTPLANE → subscribe()
 *   bare: INSERT into a plain table → row trigger NOTIFY with the row as JSON
 *         → a LISTENing client js.publish(msgID) → a plain pull consumer
 *
 * Latency = receive time − the moment just before append/INSERT was called,
 * keyed by event id, all in this process (performance.now()).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Sql } from 'postgres'
import { sampleHoldback } from './bus-holdback.ts'
import { type Pipeline, type PipelineSetup, barePipeline, eventplanePipeline } from './bus-pipelines.ts'
import { type LatencyResult, Tracker, mergeResults } from './bus-tracker.ts'
import { percentile } from './lib.ts'

/**
 * Calls `fire` `rate` times a second for `seconds`, scheduled by the wall
 * clock from the start (open loop: a slow write never delays the next one).
 */
async function atFixedRate(rate: number, seconds: number, fire: (i: number) => void): Promise<void> {
  const interval = 1000 / rate
  const total = Math.round(rate * seconds)
  const start = performance.now()
  for (let i = 0; i < total; ) {
    const now = performance.now()
    while (i < total && start + i * interval <= now) fire(i++)
    if (i < total) await sleep(Math.max(0, start + i * interval - performance.now()))
  }
}

async function runAtRate(
  p: Pipeline,
  rate: number,
  seconds: number,
  drainMs: number,
  admin: Sql,
): Promise<LatencyResult> {
  const tracker = new Tracker()
  p.tracker = tracker
  const writes: Promise<void>[] = []
  const sampler = sampleHoldback(admin)
  await atFixedRate(rate, seconds, (i) => writes.push(p.send(tracker, i)))
  await Promise.all(writes)
  const deadline = performance.now() + drainMs
  while (!tracker.caughtUp && performance.now() < deadline) await sleep(5)
  const holdback = await sampler.stop()
  await sleep(200) // late redeliveries still count as duplicates
  p.tracker = undefined
  return tracker.result(holdback)
}

export interface LatencySetup extends PipelineSetup {
  rate: number
  seconds: number
  /** Measured slices per pipeline, alternating bare and ours so load drift hits both. */
  segments: number
  warmupSeconds: number
}

export interface LatencyComparison {
  bare: LatencyResult
  ours: LatencyResult
}

/** Runs both pipelines (warm-up first, not counted), alternating `segments` slices of `seconds / segments` each. */
export async function benchLatency(o: LatencySetup): Promise<LatencyComparison> {
  const bare = await barePipeline(o)
  const ours = await eventplanePipeline(o).catch(async (e: unknown) => {
    await bare.stop()
    throw e
  })
  try {
    const drainMs = 10_000
    await runAtRate(bare, o.rate, o.warmupSeconds, drainMs, o.admin)
    await runAtRate(ours, o.rate, o.warmupSeconds, drainMs, o.admin)
    const slice = o.seconds / o.segments
    const results = { bare: [] as LatencyResult[], ours: [] as LatencyResult[] }
    for (let s = 0; s < o.segments; s++) {
      for (const [name, p] of [
        ['bare', bare],
        ['ours', ours],
      ] as const) {
        const r = await runAtRate(p, o.rate, slice, drainMs, o.admin)
        results[name].push(r)
        process.stderr.write(
          `  latency ${name} ${s + 1}/${o.segments}: p50 ${percentile(r.latenciesMs, 50).toFixed(2)} ms, p99 ${percentile(r.latenciesMs, 99).toFixed(2)} ms ` +
            `(append p50 ${percentile(r.appendMs, 50).toFixed(2)}, p99 ${percentile(r.appendMs, 99).toFixed(2)}; ` +
            `on bus p50 ${percentile(r.busMs, 50).toFixed(2)}, p99 ${percentile(r.busMs, 99).toFixed(2)}), ` +
            `sent ${r.sent}, received ${r.received}, skipped ${r.skipped}; other-DB write xacts in ${r.holdback.held}/${r.holdback.samples} samples, ` +
            `longest ${r.holdback.longestMs.toFixed(0)} ms\n`,
        )
      }
    }
    return { bare: mergeResults(results.bare), ours: mergeResults(results.ours) }
  } finally {
    await Promise.allSettled([bare.stop(), ours.stop()])
  }
}
