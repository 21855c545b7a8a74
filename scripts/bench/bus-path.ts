/**
 * Where one event's time goes on eventplane's append → subscriber path, per
 * stage, from timestamps taken in this process: the bench's own (append
 * called, append returned, message seen on the bus, delivered) and the
 * diagnostics channels of the store's AppendNotifier and the relay
 * (NOTIFY_TRACE, RELAY_TRACE: NOTIFY committed, LISTEN notification received,
 * each gap-safe read and the ids it returned, each drain).
 *
 * Per event: append (call → returned) · wake (returned → the first LISTEN
 * notification after it reached the relay) · read (that wake → the gap-safe
 * read that returned the event) · send (read → its publish handed to
 * nats.js) · bus (→ seen by a core subscriber) · deliver (bus → subscribe()).
 * They add up to the end-to-end latency. The event loop's delay over the run
 * says how much of each is this process waiting for its turn.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { RelayDrainTrace, RelayReadTrace, RelaySentTrace, RelayWakeTrace } from '@eventplane/bus-nats'
import { percentile } from './lib.ts'
import type { EventTimes } from './bus-tracker.ts'

interface NotifyTrace {
  sentAt: number
  at: number
}

export const PATH_STAGES = ['append', 'wake', 'read', 'send', 'bus', 'deliver'] as const
export type PathStage = (typeof PATH_STAGES)[number]

/** Per-stage samples (ms) over the events that went the whole way, and what the relay did meanwhile. */
export interface PathBreakdown {
  stages: Record<PathStage, number[]>
  /** NOTIFY round trips (ms) of the writer's AppendNotifier. */
  notifyMs: number[]
  /** Each event's read stage split: reads after its wake that did not return it yet (held back or in flight). */
  readsBefore: number[]
  /** Round trip of the read that returned each event. */
  readMs: number[]
  /** Durations (ms) of drains that published something: reads, publishes, acks. */
  drainMs: number[]
  /** This process's event loop delay (ms) over the run: p50, p99 (one histogram per run). */
  loopDelayMs: { p50: number; p99: number }[]
  events: number
}

export const EMPTY_PATH: PathBreakdown = {
  stages: { append: [], wake: [], read: [], send: [], bus: [], deliver: [] },
  notifyMs: [],
  readsBefore: [],
  readMs: [],
  drainMs: [],
  loopDelayMs: [],
  events: 0,
}

/** The first index whose value is ≥ x, in an ascending array (its length when none). */
function firstAtOrAfter(sorted: readonly number[], x: number): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (sorted[mid]! < x) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** Collects the store's and the relay's trace channels from `start()` until `stop()`. */
export class PathRecorder {
  readonly #notifies: NotifyTrace[] = []
  readonly #wakes: number[] = []
  readonly #reads: RelayReadTrace[] = []
  readonly #drains: RelayDrainTrace[] = []
  readonly #sentAt = new Map<string, number>()
  readonly #loop = monitorEventLoopDelay({ resolution: 1 })
  readonly #handlers: [string, (m: unknown) => void][] = [
    ['eventplane:store.notify', (m) => this.#notifies.push(m as NotifyTrace)],
    ['eventplane:relay.wake', (m) => this.#wakes.push((m as RelayWakeTrace).at)],
    ['eventplane:relay.read', (m) => this.#reads.push(m as RelayReadTrace)],
    ['eventplane:relay.drain', (m) => this.#drains.push(m as RelayDrainTrace)],
    [
      'eventplane:relay.sent',
      (m) => {
        const { at, ids } = m as RelaySentTrace
        for (const id of ids) if (!this.#sentAt.has(id)) this.#sentAt.set(id, at)
      },
    ],
  ]

  start(): this {
    for (const [name, fn] of this.#handlers) subscribe(name, fn)
    this.#loop.enable()
    return this
  }

  stop(): void {
    for (const [name, fn] of this.#handlers) unsubscribe(name, fn)
    this.#loop.disable()
  }

  breakdown(events: Iterable<[string, EventTimes]>): PathBreakdown {
    const readOf = new Map<string, number>()
    this.#reads.forEach((r, i) => {
      for (const id of r.ids) if (!readOf.has(id)) readOf.set(id, i)
    })
    const readEnds = this.#reads.map((r) => r.at)
    const out: PathBreakdown = {
      stages: { append: [], wake: [], read: [], send: [], bus: [], deliver: [] },
      notifyMs: this.#notifies.map((n) => n.at - n.sentAt),
      readsBefore: [],
      readMs: [],
      drainMs: this.#drains.filter((d) => d.events > 0).map((d) => d.at - d.startedAt),
      loopDelayMs: [{ p50: this.#loop.percentile(50) / 1e6, p99: this.#loop.percentile(99) / 1e6 }],
      events: 0,
    }
    for (const [id, t] of events) {
      const readIndex = readOf.get(id)
      if (t.appendedAt === undefined || t.busAt === undefined || t.receivedAt === undefined) continue
      const sentAt = this.#sentAt.get(id)
      if (readIndex === undefined || sentAt === undefined) continue
      const wake = this.#wakes[firstAtOrAfter(this.#wakes, t.appendedAt)]
      if (wake === undefined) continue
      const read = this.#reads[readIndex]!
      out.events++
      out.stages.append.push(t.appendedAt - t.sentAt)
      out.stages.wake.push(wake - t.appendedAt)
      out.stages.read.push(read.at - wake)
      out.stages.send.push(sentAt - read.at)
      out.stages.bus.push(t.busAt - sentAt)
      out.stages.deliver.push(t.receivedAt - t.busAt)
      out.readsBefore.push(Math.max(0, readIndex - firstAtOrAfter(readEnds, wake)))
      out.readMs.push(read.at - read.startedAt)
    }
    return out
  }
}

export function mergePaths(a: PathBreakdown, b: PathBreakdown): PathBreakdown {
  const stages = { ...a.stages }
  for (const s of PATH_STAGES) stages[s] = [...a.stages[s], ...b.stages[s]]
  return {
    stages,
    notifyMs: [...a.notifyMs, ...b.notifyMs],
    readsBefore: [...a.readsBefore, ...b.readsBefore],
    readMs: [...a.readMs, ...b.readMs],
    drainMs: [...a.drainMs, ...b.drainMs],
    loopDelayMs: [...a.loopDelayMs, ...b.loopDelayMs],
    events: a.events + b.events,
  }
}

const fmt = (xs: number[], q: number): string => (xs.length === 0 ? '–' : percentile(xs, q).toFixed(2))

/** One row per stage: p50, p90 and p99 in ms, then the relay's reads and drains. */
/**
 * Each stage's mean over the events whose end-to-end time lies in the
 * quantile band [lo, hi] (percent): what a typical (p50) or a slow (p90)
 * event's time was made of. Stage percentiles alone do not add up.
 */
export function bandMeans(p: PathBreakdown, lo: number, hi: number): Record<PathStage, number> {
  const totals = p.stages.append.map((_, i) => PATH_STAGES.reduce((sum, s) => sum + p.stages[s][i]!, 0))
  const order = totals.map((_, i) => i).sort((a, b) => totals[a]! - totals[b]!)
  const band = order.slice(Math.floor((lo / 100) * order.length), Math.ceil((hi / 100) * order.length))
  const out = {} as Record<PathStage, number>
  for (const s of PATH_STAGES)
    out[s] = band.length === 0 ? Number.NaN : band.reduce((sum, i) => sum + p.stages[s][i]!, 0) / band.length
  return out
}

export function pathRows(p: PathBreakdown): Record<string, string | number>[] {
  const typical = bandMeans(p, 45, 55)
  const slow = bandMeans(p, 85, 95)
  const row = (stage: string, xs: number[], band?: [number, number]) => ({
    stage,
    'typical event (p45–p55) ms': band ? band[0].toFixed(2) : '',
    'slow event (p85–p95) ms': band ? band[1].toFixed(2) : '',
    'p50 ms': fmt(xs, 50),
    'p90 ms': fmt(xs, 90),
    'p99 ms': fmt(xs, 99),
    samples: xs.length,
  })
  const sum = (m: Record<PathStage, number>) => PATH_STAGES.reduce((t, s) => t + m[s], 0)
  // Events no read missed after their wake: what the path costs when no other transaction holds the log back.
  const unheld = p.stages.append.flatMap((_, i) =>
    p.readsBefore[i] === 0 ? [PATH_STAGES.reduce((t, s) => t + p.stages[s][i]!, 0)] : [],
  )
  return [
    ...PATH_STAGES.map((s) => row(s, p.stages[s], [typical[s], slow[s]])),
    { ...row('= append → subscriber', [], [sum(typical), sum(slow)]), samples: p.events },
    row('(= append → subscriber, events the first read after their wake returned)', unheld),
    row('(NOTIFY round trip)', p.notifyMs),
    row('(round trip of the read that returned it)', p.readMs),
    row('(reads after the wake that missed it)', p.readsBefore),
    row('(drain that published: reads, publishes, acks)', p.drainMs),
    row(
      '(event loop delay p50, per run)',
      p.loopDelayMs.map((d) => d.p50),
    ),
    row(
      '(event loop delay p99, per run)',
      p.loopDelayMs.map((d) => d.p99),
    ),
  ]
}
