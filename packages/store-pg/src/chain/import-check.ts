import type { Sql } from 'postgres'
import { EventplaneError, REDACTED_ACTOR } from '@eventplane/core'
import { typedPgErrors } from '../pg-errors.ts'
import { chainHashesSql } from '../sql/chain-hashes.ts'
import { chainRowsSql } from '../sql/chain-rows.ts'
import { canonicalInstant, canonicalText, chainLink, jsonbText } from './canonical.ts'

export interface ImportChainResult {
  /** Lines whose hash was recomputed and matched. */
  events: number
  streams: number
}

interface Line {
  event_id: string
  tenant_id: string
  kind: string
  stream: { category: string; id: string }
  type: string
  schema_version: number
  data: unknown
  correlation_id: string
  causation_id: string | null
  caused_by: string
  occurred_at: string
  stream_version: number
  hash?: unknown
}

/** The other way on for a file whose chain cannot be checked, and what it costs. */
const REHASH =
  'import with --rehash: the chain is recomputed in this database, so its events get new hashes and heads saved ' +
  'or published before no longer match them'

function broken(message: string, line: number): EventplaneError {
  return new EventplaneError('store.chain_broken', message, { details: { line } })
}

/** The hash a line should have after `prev`, and the one it carries. */
function lineLink(e: Line, prev: Buffer | null): Buffer {
  const fields = {
    event_id: e.event_id,
    tenant_id: e.tenant_id,
    kind: e.kind,
    category: e.stream.category,
    stream_id: e.stream.id,
    stream_version: e.stream_version,
    type: e.type,
    schema_version: e.schema_version,
    correlation_id: e.correlation_id,
    causation_id: e.causation_id,
    caused_by: e.caused_by,
    occurred_at: canonicalInstant(e.occurred_at),
  }
  return chainLink(prev, canonicalText(fields, jsonbText(e.data)))
}

/**
 * Checks the hash chain of an export before it is imported into the database
 * of `sql` (run it after the lines were validated as envelopes): every line
 * must carry its `hash`, and each must be the link after the previous event
 * of its stream — the previous line of that stream in the file, or, for a
 * stream's first line in the file, the database's stored version before it
 * (the genesis for version 1). Anything else (a line edited, dropped or
 * moved, a masked `caused_by`, an event whose predecessor is in neither) is
 * `store.chain_broken` naming the line; nothing is written by this check.
 */
export async function checkImportChain(
  sql: Sql,
  lines: AsyncIterable<string> | Iterable<string>,
): Promise<ImportChainResult> {
  const last = new Map<string, { version: number; hash: Buffer }>()
  let n = 0
  let events = 0
  for await (const raw of lines) {
    n++
    if (raw.trim() === '') continue
    const e = JSON.parse(raw) as Line
    if (typeof e.hash !== 'string' || !/^[0-9a-f]{64}$/.test(e.hash))
      throw broken(`line ${n} has no hash (an export from before the chain): export it again, or ${REHASH}`, n)
    const key = `${e.tenant_id}/${e.stream.category}/${e.stream.id}`
    let prev = last.get(key)
    if (!prev || prev.version !== e.stream_version - 1) {
      if (prev) throw broken(`line ${n}: ${key} jumps from version ${prev.version} to ${e.stream_version}`, n)
      if (e.stream_version > 1) {
        const [stored] = await typedPgErrors(() =>
          chainRowsSql(
            sql,
            { tenant: e.tenant_id, category: e.stream.category, stream_id: e.stream.id },
            { tenant: '', category: '', stream_id: '', version: e.stream_version - 2 },
            1,
          ),
        )
        if (!stored?.hash || Number(stored.stream_version) !== e.stream_version - 1)
          throw broken(
            `line ${n}: ${key} starts at version ${e.stream_version} but version ${e.stream_version - 1} is neither in the file nor in the database`,
            n,
          )
        prev = { version: e.stream_version - 1, hash: stored.hash }
      }
    }
    const computed = lineLink(e, prev?.hash ?? null)
    if (computed.toString('hex') !== e.hash) {
      const what = `${key} version ${e.stream_version} (event ${e.event_id})`
      // A masked export: the hash covers the caused_by the export left out, so no line of it can match.
      if (e.caused_by === REDACTED_ACTOR)
        throw broken(
          `line ${n}: the hash of ${what} cannot be checked: its caused_by is masked (an export without --include-actor); export again with --include-actor, or ${REHASH}`,
          n,
        )
      throw broken(`line ${n}: the hash of ${what} does not match its content and chain`, n)
    }
    last.set(key, { version: e.stream_version, hash: computed })
    events++
  }
  return { events, streams: last.size }
}

/**
 * After an import: the hash the database stored for each line's event must be
 * the line's. A difference means the event went in at another version (or
 * the two sides disagree on the canonical form) and is `store.chain_broken`.
 */
export async function confirmImportedHashes(
  sql: Sql,
  tenant: string,
  lines: AsyncIterable<string> | Iterable<string>,
): Promise<number> {
  let batch: { id: string; hash: string; line: number }[] = []
  let n = 0
  let confirmed = 0
  const flush = async () => {
    const stored = await typedPgErrors(() =>
      chainHashesSql(
        sql,
        tenant,
        batch.map((b) => b.id),
      ),
    )
    for (const b of batch) {
      if (stored.get(b.id)?.toString('hex') !== b.hash)
        throw broken(`line ${b.line}: event ${b.id} was stored with another hash than the file's`, b.line)
    }
    confirmed += batch.length
    batch = []
  }
  for await (const raw of lines) {
    n++
    if (raw.trim() === '') continue
    const e = JSON.parse(raw) as { event_id: string; hash: string }
    batch.push({ id: e.event_id, hash: e.hash, line: n })
    if (batch.length === 1000) await flush()
  }
  if (batch.length > 0) await flush()
  return confirmed
}
