import type { Sql } from 'postgres'
import { validateCategory, validateStreamId, validateTenant } from '@eventplane/core'
import { typedPgErrors } from '../pg-errors.ts'
import { type ChainKey, type ChainRowRaw, chainRowsSql } from '../sql/chain-rows.ts'
import type { ChainHeads } from './heads.ts'
import { type ChainBreak, type ChainRow, ChainVerifier } from './verifier.ts'

export interface VerifyOptions {
  /** One tenant; all tenants the role may read when absent (the operator role reads all). */
  tenant?: string
  /** One stream of the tenant. */
  stream?: { category: string; id: string }
  /** Heads saved earlier (checked with {@link checkHeads} first): the chain must still lead to them. */
  heads?: ChainHeads
  /** Rows per round trip (default 500: a page dies young, so the heap does not grow): memory stays about one page whatever the log's size. */
  batchSize?: number
  /** Called after each page with the events checked so far. */
  onProgress?: (events: number) => void
  signal?: AbortSignal
}

export interface VerifyResult {
  intact: boolean
  events: number
  streams: number
  /** Streams with a broken link (each reported once, at its first one). */
  brokenStreams: number
  /** The first broken link of each broken stream, in stream order (at most 1,000). */
  breaks: ChainBreak[]
}

function toChainRow(r: ChainRowRaw): ChainRow {
  return {
    ...r,
    stream_version: Number(r.stream_version),
    global_position: BigInt(r.global_position),
    tx_id: BigInt(r.tx_id),
  }
}

/**
 * Recomputes every hash chain in scope from the stored values, page by page
 * in (tenant, category, stream, version) order, and reports each stream's
 * first broken link. Reads through eventplane.chain_rows only (plain column
 * values; no database function computes a hash for it).
 */
export async function verifyLog(sql: Sql, options: VerifyOptions = {}): Promise<VerifyResult> {
  const tenant = options.tenant === undefined ? undefined : validateTenant(options.tenant)
  const stream = options.stream && {
    category: validateCategory(options.stream.category),
    stream_id: validateStreamId(options.stream.id),
  }
  if (stream && tenant === undefined) throw new TypeError('a stream needs its tenant')
  const heads = options.heads
  const verifier = new ChainVerifier(
    heads
      ? {
          heads: {
            tenant: heads.tenant,
            at: { tx_id: heads.tx_id, global_position: heads.global_position },
            streams: new Map(
              heads.streams
                .filter((h) => !stream || (h.category === stream.category && h.stream_id === stream.stream_id))
                .map((h) => [`${h.category}/${h.stream_id}`, { version: h.version, hash: h.hash }]),
            ),
          },
        }
      : {},
  )
  const batchSize = options.batchSize ?? 500
  const scope = { ...(tenant === undefined ? {} : { tenant }), ...stream }
  const fetchAfter = (after: ChainKey) => {
    const p = typedPgErrors(() => chainRowsSql(sql, scope, after, batchSize))
    p.catch(() => {}) // awaited below; this only keeps an abort in between from leaving it unhandled
    return p
  }
  // The next page is fetched while this one is hashed: two pages in memory at most.
  let page = fetchAfter({ tenant: '', category: '', stream_id: '', version: 0 })
  for (;;) {
    options.signal?.throwIfAborted()
    const rows = await page
    const last = rows.at(-1)
    const more = last !== undefined && rows.length === batchSize
    if (more)
      page = fetchAfter({
        tenant: last.tenant_id,
        category: last.category,
        stream_id: last.stream_id,
        version: Number(last.stream_version),
      })
    for (const raw of rows) verifier.push(toChainRow(raw))
    if (last) options.onProgress?.(verifier.events)
    if (!more) break
  }
  verifier.finish()
  return {
    intact: verifier.brokenStreams === 0,
    events: verifier.events,
    streams: verifier.streams,
    brokenStreams: verifier.brokenStreams,
    breaks: verifier.breaks,
  }
}
