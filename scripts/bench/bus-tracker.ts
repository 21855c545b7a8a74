/** Per-event bookkeeping for the bench:bus latency runs: send, append, bus and receive times by event id. */
import { type HoldbackSample, NO_HOLDBACK, mergeHoldback } from './bus-holdback.ts'
import { EMPTY_PATH, type PathBreakdown, mergePaths } from './bus-path.ts'

/** Counts and latencies of one measured run of a pipeline. */
export interface LatencyResult {
  latenciesMs: number[]
  /** How long each successful append (INSERT) took, for telling the write from the delivery. */
  appendMs: number[]
  /** Append call → the message seen on the bus by a core NATS subscriber (before JetStream delivery). */
  busMs: number[]
  /** The publish handed to nats.js (ours: the relay's `sent` trace; bare: its js.publish call) → seen on the bus. */
  hopMs: number[]
  /** Appends (INSERTs) called. */
  sent: number
  /** Distinct sent events received. */
  received: number
  /** Appended successfully but never received (must be 0). */
  skipped: number
  /** Deliveries of an event already received. */
  duplicates: number
  /** Appends that failed, plus publish/ack failures seen by the pipeline. */
  errors: number
  /** Deliveries of events this run did not send. */
  unexpected: number
  /** Write transactions of other databases seen while sending (they hold the relay's read back). */
  holdback: HoldbackSample
  /** Appends started more than 1 ms after they were due (the append side did not keep the schedule). */
  late: number
  /** How late the latest of them started. */
  lateMs: number
  /** First append call → last receive. */
  elapsedMs: number
  /** CPU time over the run: this process (appenders, subscriber, and in the shared topology the relay or bare publisher) plus the child's. */
  cpuMs: number
  /** Split topology: the publishing child's CPU time (included in cpuMs) and event loop delay p50/p99, per run. */
  childCpuMs: number
  childLoopMs: { role: string; cpuMs: number; p50: number; p99: number }[]
  /** Ours only: each event's time per stage of the path (see bus-path.ts). */
  path: PathBreakdown
}

/** One event's way through a pipeline (performance.now() of this process); a stage not reached is undefined. */
export interface EventTimes {
  sentAt: number
  appendedAt: number | undefined
  busAt: number | undefined
  receivedAt: number | undefined
}

/** Send times by event id, and what came back. */
export class Tracker {
  readonly #sentAt = new Map<string, number>()
  readonly #appended = new Map<string, number>()
  readonly #received = new Map<string, number>()
  readonly #onBus = new Map<string, number>()
  readonly #published = new Map<string, number>()
  readonly latenciesMs: number[] = []
  readonly appendMs: number[] = []
  readonly busMs: number[] = []
  /** performance.now() of the last first-time receive. */
  lastReceivedAt = 0
  duplicates = 0
  errors = 0
  unexpected = 0

  sending(id: string): void {
    this.#sentAt.set(id, performance.now())
  }

  appended(id: string): void {
    const at = performance.now()
    this.#appended.set(id, at)
    this.appendMs.push(at - this.#sentAt.get(id)!)
  }

  published(id: string, at = performance.now()): void {
    if (this.#sentAt.has(id) && !this.#published.has(id)) this.#published.set(id, at)
  }

  onBus(id: string, at = performance.now()): void {
    const sentAt = this.#sentAt.get(id)
    if (sentAt === undefined || this.#onBus.has(id)) return
    this.#onBus.set(id, at)
    this.busMs.push(at - sentAt)
  }

  /** Publish → bus per event, once both are known (a child process's publish times come in batches, later). */
  #hops(): number[] {
    const out: number[] = []
    for (const [id, at] of this.#onBus) {
      const publishedAt = this.#published.get(id)
      if (publishedAt !== undefined) out.push(at - publishedAt)
    }
    return out
  }

  receive(id: string, at = performance.now()): void {
    const sentAt = this.#sentAt.get(id)
    if (sentAt === undefined) this.unexpected++
    else if (this.#received.has(id)) this.duplicates++
    else {
      this.#received.set(id, at)
      this.latenciesMs.push(at - sentAt)
      this.lastReceivedAt = at
    }
  }

  /** Each sent event's times, by event id. */
  *times(): IterableIterator<[string, EventTimes]> {
    for (const [id, sentAt] of this.#sentAt) {
      yield [
        id,
        { sentAt, appendedAt: this.#appended.get(id), busAt: this.#onBus.get(id), receivedAt: this.#received.get(id) },
      ]
    }
  }

  get caughtUp(): boolean {
    for (const id of this.#appended.keys()) if (!this.#received.has(id)) return false
    return true
  }

  result(
    holdback: HoldbackSample,
  ): Omit<LatencyResult, 'late' | 'lateMs' | 'elapsedMs' | 'cpuMs' | 'childCpuMs' | 'childLoopMs' | 'path'> {
    let skipped = 0
    for (const id of this.#appended.keys()) if (!this.#received.has(id)) skipped++
    const { latenciesMs, appendMs, busMs, duplicates, errors, unexpected } = this
    const hopMs = this.#hops()
    return {
      latenciesMs,
      appendMs,
      busMs,
      hopMs,
      sent: this.#sentAt.size,
      received: this.#received.size,
      skipped,
      duplicates,
      errors,
      unexpected,
      holdback,
    }
  }
}

/** Sums the counts of several runs and pools their samples. */
export function mergeResults(results: LatencyResult[]): LatencyResult {
  const sum = (
    k: Exclude<
      keyof LatencyResult,
      'latenciesMs' | 'appendMs' | 'busMs' | 'hopMs' | 'holdback' | 'lateMs' | 'path' | 'childLoopMs'
    >,
  ): number => results.reduce((n, r) => n + r[k], 0)
  return {
    latenciesMs: results.flatMap((r) => r.latenciesMs),
    appendMs: results.flatMap((r) => r.appendMs),
    busMs: results.flatMap((r) => r.busMs),
    hopMs: results.flatMap((r) => r.hopMs),
    sent: sum('sent'),
    received: sum('received'),
    skipped: sum('skipped'),
    duplicates: sum('duplicates'),
    errors: sum('errors'),
    unexpected: sum('unexpected'),
    holdback: results.map((r) => r.holdback).reduce(mergeHoldback, NO_HOLDBACK),
    late: sum('late'),
    lateMs: Math.max(0, ...results.map((r) => r.lateMs)),
    elapsedMs: sum('elapsedMs'),
    cpuMs: sum('cpuMs'),
    childCpuMs: sum('childCpuMs'),
    childLoopMs: results.flatMap((r) => r.childLoopMs),
    path: results.map((r) => r.path).reduce(mergePaths, EMPTY_PATH),
  }
}
