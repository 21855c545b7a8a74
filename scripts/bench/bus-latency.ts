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
 * keyed by event id, in this process's performance.now(). With the split
 * topology (default) the relay, bare's LISTEN + publisher and the bus watcher
 * (and with `--subscribers child` the subscribers) run in child processes
 * (bus-pipeline-child.ts) whose times come back as timeOrigin + now and are
 * turned into this process's clock (see bus-pipelines.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Sql } from '@eventplane/store-pg'
import { sampleHoldback } from './bus-holdback.ts'
import { PATH_STAGES, PathRecorder, bandMeans } from './bus-path.ts'
import { type Pipeline, type PipelineSetup, barePipeline, eventplanePipeline } from './bus-pipelines.ts'
import { type LatencyResult, Tracker, mergeResults } from './bus-tracker.ts'
import { cpuMsSince, percentile } from './lib.ts'

/**
 * `appenders` loops share `opsPerSecond × seconds` appends scheduled on the
 * wall clock from the start (append i is due at start + i / opsPerSecond);
 * each loop takes the next due append, waits until it is due, and waits for
 * its append to finish before taking another. A fixed pool, as an
 * application has, not one promise per append: with enough appenders the
 * append side keeps the schedule, and how far it fell behind is returned.
 */
async function paced(
  opsPerSecond: number,
  seconds: number,
  appenders: number,
  append: (i: number) => Promise<void>,
): Promise<{ lateMs: number; late: number }> {
  const interval = 1000 / opsPerSecond
  const total = Math.round(opsPerSecond * seconds)
  const start = performance.now()
  let next = 0
  let lateMs = 0
  let late = 0
  await Promise.all(
    Array.from({ length: appenders }, async () => {
      for (let i = next++; i < total; i = next++) {
        const wait = start + i * interval - performance.now()
        if (wait > 0) await sleep(wait)
        else if (-wait > 1) {
          late++
          lateMs = Math.max(lateMs, -wait)
        }
        await append(i)
      }
    }),
  )
  return { lateMs, late }
}

export interface Pace {
  /** Events per second. */
  rate: number
  /** Events per append (one transaction): the append rate is rate / batch. */
  batch: number
  /** Concurrent appenders (a fixed pool of loops). */
  appenders: number
}

async function runAtRate(
  p: Pipeline,
  pace: Pace,
  seconds: number,
  drainMs: number,
  admin: Sql,
): Promise<LatencyResult> {
  const tracker = new Tracker()
  p.tracker = tracker
  const sampler = sampleHoldback(admin)
  const path = new PathRecorder().start()
  await p.childStats?.() // from here on
  const cpu = process.cpuUsage()
  const start = performance.now()
  const schedule = await paced(pace.rate / pace.batch, seconds, pace.appenders, (i) => p.send(tracker, i, pace.batch))
  const deadline = performance.now() + drainMs
  while (!tracker.caughtUp && performance.now() < deadline) await sleep(5)
  const elapsedMs = tracker.lastReceivedAt - start
  const parentCpuMs = cpuMsSince(cpu)
  // Also brings every trace the child took so far into this process (IPC keeps the order).
  const children = (await p.childStats?.()) ?? []
  // The bus watcher observes both pipelines alike: not part of either's cost.
  const childCpuMs = children.filter((c) => c.role !== 'watcher').reduce((t, c) => t + c.cpuMs, 0)
  const cpuMs = parentCpuMs + childCpuMs
  const holdback = await sampler.stop()
  path.stop()
  await sleep(200) // late redeliveries still count as duplicates
  p.tracker = undefined
  return {
    ...tracker.result(holdback),
    ...schedule,
    elapsedMs,
    cpuMs,
    childCpuMs,
    childLoopMs: children.map((c) => ({ role: c.role, cpuMs: c.cpuMs, p50: c.loopP50, p99: c.loopP99 })),
    path: path.breakdown(tracker.times()),
  }
}

export interface LatencySetup extends PipelineSetup {
  pace: Pace
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
    await runAtRate(bare, o.pace, o.warmupSeconds, drainMs, o.admin)
    await runAtRate(ours, o.pace, o.warmupSeconds, drainMs, o.admin)
    const slice = o.seconds / o.segments
    const results = { bare: [] as LatencyResult[], ours: [] as LatencyResult[] }
    for (let s = 0; s < o.segments; s++) {
      for (const [name, p] of [
        ['bare', bare],
        ['ours', ours],
      ] as const) {
        const r = await runAtRate(p, o.pace, slice, drainMs, o.admin)
        results[name].push(r)
        const typical = bandMeans(r.path, 45, 55)
        process.stderr.write(
          `  ${o.pace.rate} ev/s ${name} ${s + 1}/${o.segments}: p50 ${percentile(r.latenciesMs, 50).toFixed(2)} ms, p99 ${percentile(r.latenciesMs, 99).toFixed(2)} ms ` +
            `(append p50 ${percentile(r.appendMs, 50).toFixed(2)}, p99 ${percentile(r.appendMs, 99).toFixed(2)}; ` +
            `on bus p50 ${percentile(r.busMs, 50).toFixed(2)}, p99 ${percentile(r.busMs, 99).toFixed(2)}; ` +
            `publish → bus p50 ${percentile(r.hopMs, 50).toFixed(2)}, p90 ${percentile(r.hopMs, 90).toFixed(2)}), ` +
            `sent ${r.sent}, received ${r.received}, skipped ${r.skipped}, appends late ${r.late} (≤ ${r.lateMs.toFixed(0)} ms); other-DB write xacts in ${r.holdback.held}/${r.holdback.samples} samples, ` +
            `longest ${r.holdback.longestMs.toFixed(0)} ms` +
            `; event loop delay p50 ${r.path.loopDelayMs[0]!.p50.toFixed(1)}, p99 ${r.path.loopDelayMs[0]!.p99.toFixed(1)} ms` +
            r.childLoopMs
              .map(
                (c) =>
                  ` (${c.role === 'subscriber' || c.role === 'watcher' ? c.role : 'publishing'} child: p50 ${c.p50.toFixed(1)}, p99 ${c.p99.toFixed(1)} ms)`,
              )
              .join('') +
            `; CPU µs/event ${((r.cpuMs * 1000) / Math.max(1, r.received)).toFixed(0)} (child ${((r.childCpuMs * 1000) / Math.max(1, r.received)).toFixed(0)}` +
            r.childLoopMs
              .filter((c) => c.role === 'subscriber')
              .map((c) => `, of which subscriber ${((c.cpuMs * 1000) / Math.max(1, r.received)).toFixed(0)}`)
              .join('') +
            ')' +
            (r.path.events > 0
              ? `; typical event (p45–p55): ${PATH_STAGES.map((st) => `${st} ${typical[st].toFixed(1)}`).join(', ')}`
              : '') +
            '\n',
        )
      }
    }
    return { bare: mergeResults(results.bare), ours: mergeResults(results.ours) }
  } finally {
    await Promise.allSettled([bare.stop(), ours.stop()])
  }
}
