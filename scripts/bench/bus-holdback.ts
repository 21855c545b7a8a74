import { setTimeout as sleep } from 'node:timers/promises'
import type { Sql } from '@eventplane/store-pg'

/** What the sampler saw: write transactions open in other databases of the cluster. */
export interface HoldbackSample {
  samples: number
  /** Samples in which at least one such transaction was open. */
  held: number
  /** The oldest such transaction seen, in ms since it started. */
  longestMs: number
}

export const NO_HOLDBACK: HoldbackSample = { samples: 0, held: 0, longestMs: 0 }

export function mergeHoldback(a: HoldbackSample, b: HoldbackSample): HoldbackSample {
  return { samples: a.samples + b.samples, held: a.held + b.held, longestMs: Math.max(a.longestMs, b.longestMs) }
}

/**
 * Samples, every `everyMs`, the write transactions (those with an xid) open in
 * *other* databases. Any of them holds the relay's gap-safe read back
 * (DESIGN §3), so on a shared server they explain tail latency the bare
 * pipeline does not see. Runs until `stop()`, which returns what it saw.
 */
export function sampleHoldback(sql: Sql, everyMs = 20): { stop(): Promise<HoldbackSample> } {
  const seen: HoldbackSample = { ...NO_HOLDBACK }
  let running = true
  const loop = (async () => {
    while (running) {
      const [row] = await sql<{ n: number; ms: number }[]>`
        select count(*)::int as n, coalesce(max(extract(epoch from clock_timestamp() - xact_start)) * 1000, 0)::float8 as ms
          from pg_stat_activity
         where backend_xid is not null and datname is distinct from current_database()`
      seen.samples++
      if (row!.n > 0) seen.held++
      seen.longestMs = Math.max(seen.longestMs, row!.ms)
      await sleep(everyMs)
    }
  })()
  return {
    async stop() {
      running = false
      await loop
      return seen
    },
  }
}
