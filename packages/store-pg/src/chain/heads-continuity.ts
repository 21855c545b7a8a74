import type { Sql } from 'postgres'
import { typedPgErrors } from '../pg-errors.ts'
import { chainHashesAtSql } from '../sql/chain-hashes-at.ts'
import type { ChainHeads } from './heads.ts'

/** A stream whose chain no longer leads through its head in earlier heads. */
export interface HeadsConflict {
  category: string
  stream_id: string
  /** The earlier head's version. */
  version: number
  reason: 'rewritten' | 'missing'
}

/**
 * Whether the log still extends `earlier` heads of the same tenant: every
 * stream of them must still have, at the earlier head's version, the hash it
 * had then (one lookup per stream that grew). A publisher checks this before
 * it publishes newer heads, so heads published once are never replaced by
 * heads of a rewritten history: verify against the newest published heads
 * still sees the rewrite. Stored hashes are compared (what heads are made of);
 * verify recomputes them.
 */
export async function headsConflicts(sql: Sql, earlier: ChainHeads, now: ChainHeads): Promise<HeadsConflict[]> {
  const current = new Map(now.streams.map((s) => [`${s.category}/${s.stream_id}`, s]))
  const conflicts: HeadsConflict[] = []
  const grown: { category: string; stream_id: string; version: number; hash: Buffer }[] = []
  for (const e of earlier.streams) {
    const n = current.get(`${e.category}/${e.stream_id}`)
    const at = { category: e.category, stream_id: e.stream_id, version: e.version }
    if (!n || n.version < e.version) conflicts.push({ ...at, reason: 'missing' })
    else if (n.version === e.version) {
      if (!n.hash.equals(e.hash)) conflicts.push({ ...at, reason: 'rewritten' })
    } else grown.push(e)
  }
  for (let i = 0; i < grown.length; i += 1000) {
    const page = grown.slice(i, i + 1000)
    const stored = await typedPgErrors(() => chainHashesAtSql(sql, earlier.tenant, page))
    const byKey = new Map(stored.map((r) => [`${r.category}/${r.stream_id}`, r.hash]))
    for (const e of page) {
      const hash = byKey.get(`${e.category}/${e.stream_id}`)
      if (!hash) conflicts.push({ category: e.category, stream_id: e.stream_id, version: e.version, reason: 'missing' })
      else if (!hash.equals(e.hash))
        conflicts.push({ category: e.category, stream_id: e.stream_id, version: e.version, reason: 'rewritten' })
    }
  }
  return conflicts
}
