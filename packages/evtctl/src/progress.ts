import cliProgress from 'cli-progress'
import type { ProjectionProgress } from '@eventplane/runtime'
import type { Writer } from './io.ts'

/** Reports replay progress: a bar with rate and ETA on a terminal, a plain line per interval otherwise. */
export interface ProgressReporter {
  update(p: ProjectionProgress): void
  stop(): void
}

const PLAIN_INTERVAL_MS = 1000

/**
 * Time left at the current rate: `?` while it cannot be known (no total, no
 * rate yet). Ours rather than cli-progress's, which prints its `INF` and
 * `NULL` cut to two characters: `ETA NFs`.
 */
export function eta(p: ProjectionProgress): string {
  if (p.total === undefined || !(p.rate > 0) || !Number.isFinite(p.rate)) return '?'
  const exact = Math.max(0, (p.total - p.events) / p.rate)
  if (exact < 1) return '<1s'
  const seconds = Math.round(exact)
  if (seconds < 60) return `${seconds}s`
  const minutes = Math.floor(seconds / 60)
  return minutes < 60 ? `${minutes}m${String(seconds % 60).padStart(2, '0')}s` : `${Math.round(minutes / 60)}h`
}

/** Plain lines, at most one per second plus the last one: for logs and pipes. */
function plainReporter(out: Writer, intervalMs: number): ProgressReporter {
  let last: ProjectionProgress | undefined
  let printedAt = 0
  let printed: ProjectionProgress | undefined
  const print = (p: ProjectionProgress): void => {
    const total =
      p.total === undefined
        ? ' events'
        : `/${p.total} events (${p.total === 0 ? 100 : Math.floor((p.events * 100) / p.total)}%)`
    out.write(`replay ${p.projection}: ${p.events}${total}, ${Math.round(p.rate)} events/s, ETA ${eta(p)}\n`)
    printed = p
    printedAt = Date.now()
  }
  return {
    update(p) {
      last = p
      if (Date.now() - printedAt >= intervalMs) print(p)
    },
    stop() {
      if (last && last !== printed) print(last)
    },
  }
}

function barReporter(out: Writer): ProgressReporter {
  const bar = new cliProgress.SingleBar(
    {
      stream: out as NodeJS.WritableStream,
      format: 'replay {projection} [{bar}] {percentage}% | {value}/{total} events | {speed} events/s | ETA {timeLeft}',
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  )
  let started = false
  return {
    update(p) {
      const payload = { projection: p.projection, speed: Math.round(p.rate), timeLeft: eta(p) }
      if (!started) {
        bar.start(p.total ?? p.events, p.events, payload)
        started = true
      }
      if (p.total !== undefined && p.total !== bar.getTotal()) bar.setTotal(p.total)
      bar.update(p.events, payload)
    },
    stop() {
      if (started) bar.stop()
    },
  }
}

/** A bar when `out` is a terminal, else plain lines. */
export function progressReporter(out: Writer, intervalMs = PLAIN_INTERVAL_MS): ProgressReporter {
  return out.isTTY ? barReporter(out) : plainReporter(out, intervalMs)
}
