import { type ChainFields, canonicalText, chainLink } from './canonical.ts'

/** One stored event as verify reads it (eventplane.chain_rows): data as jsonb text, occurred_at canonical. */
export interface ChainRow extends ChainFields {
  data: string
  /** Null only if someone dropped the column's NOT NULL and cleared it. */
  hash: Buffer | null
  global_position: bigint
  tx_id: bigint
}

/**
 * What a broken link looks like: `changed` (the event's content differs from
 * what was hashed), `hash_altered` (only its stored hash), `missing` (an event
 * before it is gone), `reordered` (it and the next event swapped versions),
 * `inserted` (it was not written where it stands), `rewritten` (the chain is
 * consistent but differs from a saved head).
 */
export type BreakKind = 'changed' | 'hash_altered' | 'missing' | 'reordered' | 'inserted' | 'rewritten'

export interface ChainBreak {
  tenant: string
  category: string
  stream_id: string
  version: number
  /** The event stored at that version, if any. */
  event_id: string | null
  kind: BreakKind
  message: string
}

/** A stream's saved head (from `evtctl heads`). */
export interface SavedHead {
  version: number
  hash: Buffer
}

/** A point of the global order: (tx_id, global_position). */
export interface LogPoint {
  tx_id: bigint
  global_position: bigint
}

export interface VerifierOptions {
  /** Saved heads of one tenant, by `category/stream_id`, and the point they cover. */
  heads?: { tenant: string; at: LogPoint; streams: Map<string, SavedHead> }
  /** At most this many breaks are kept (one per stream); default 1000. */
  maxBreaks?: number
}

function linkOf(prev: Buffer | null, row: ChainRow, version = row.stream_version): Buffer {
  return chainLink(prev, canonicalText(row, row.data, version))
}

const atOrBefore = (row: ChainRow, at: LogPoint): boolean =>
  row.tx_id < at.tx_id || (row.tx_id === at.tx_id && row.global_position <= at.global_position)

interface StreamState {
  tenant: string
  category: string
  stream_id: string
  /** The last row whose link checked out: the chain goes on from its hash and version. */
  row: ChainRow | null
  /** A row whose hash did not match, waiting for the next row to say why. */
  pending: ChainRow | null
  broken: boolean
}

/** The hash a stream's next link starts from, and the version it must have minus one. */
const prevOf = (s: StreamState): Buffer | null => s.row?.hash ?? null
const versionOf = (s: StreamState): number => s.row?.stream_version ?? 0

/**
 * Recomputes hash chains from rows fed in (tenant, category, stream, version)
 * order, keeping one stream's state at a time (constant memory), and records
 * each stream's first broken link. A mismatch is classified with the next row
 * of the stream: whether that row still chains from the stored hash (content
 * changed), from the recomputed one (hash altered), belongs one version
 * earlier (an event was inserted, or two swapped), or one version later (one
 * was deleted and the rest renumbered).
 */
export class ChainVerifier {
  readonly breaks: ChainBreak[] = []
  events = 0
  streams = 0
  brokenStreams = 0
  private state: StreamState | null = null
  private readonly seenHeads = new Set<string>()
  private readonly maxBreaks: number

  constructor(private readonly options: VerifierOptions = {}) {
    this.maxBreaks = options.maxBreaks ?? 1000
  }

  push(row: ChainRow): void {
    this.events++
    const s = this.state
    if (!s || s.tenant !== row.tenant_id || s.category !== row.category || s.stream_id !== row.stream_id) {
      if (s) this.endStream(s)
      this.streams++
      this.state = {
        tenant: row.tenant_id,
        category: row.category,
        stream_id: row.stream_id,
        row: null,
        pending: null,
        broken: false,
      }
      if (this.headsFor(row.tenant_id)) this.seenHeads.add(`${row.category}/${row.stream_id}`)
    }
    this.check(this.state!, row)
  }

  /** Ends the walk: the last stream, and saved heads of streams the log no longer has. */
  finish(): void {
    if (this.state) this.endStream(this.state)
    this.state = null
    const heads = this.options.heads
    if (!heads) return
    for (const [key, head] of heads.streams) {
      if (this.seenHeads.has(key)) continue
      const [category, ...rest] = key.split('/')
      this.report({
        tenant: heads.tenant,
        category: category!,
        stream_id: rest.join('/'),
        version: 1,
        event_id: null,
        kind: 'missing',
        message: `the saved heads have this stream at version ${head.version}; the log has no event of it`,
      })
    }
  }

  private headsFor(tenant: string) {
    const heads = this.options.heads
    return heads && heads.tenant === tenant ? heads : undefined
  }

  private check(s: StreamState, row: ChainRow): void {
    if (s.broken) return
    if (s.pending) {
      this.classify(s, s.pending, prevOf(s), row)
      return
    }
    const expected = versionOf(s) + 1
    if (row.stream_version !== expected) {
      this.breakAt(s, expected, null, 'missing', `version ${expected} is not in the log (next: ${row.stream_version})`)
      return
    }
    const computed = linkOf(prevOf(s), row)
    if (!row.hash || !computed.equals(row.hash)) {
      s.pending = row
      return
    }
    if (s.row && row.global_position < s.row.global_position) {
      this.breakAt(
        s,
        s.row.stream_version,
        s.row.event_id,
        'inserted',
        `version ${s.row.stream_version} was written after version ${row.stream_version} (position ` +
          `${s.row.global_position} > ${row.global_position})`,
      )
      return
    }
    const heads = this.headsFor(row.tenant_id)
    const head = heads?.streams.get(`${row.category}/${row.stream_id}`)
    if (heads && (!head || row.stream_version > head.version) && atOrBefore(row, heads.at)) {
      this.breakAt(
        s,
        row.stream_version,
        row.event_id,
        'inserted',
        `version ${row.stream_version} is at or before the saved heads' position but not under their head`,
      )
      return
    }
    if (head && row.stream_version === head.version && !head.hash.equals(computed)) {
      this.breakAt(
        s,
        row.stream_version,
        row.event_id,
        'rewritten',
        `the chain up to version ${row.stream_version} differs from the saved head (history before it was rewritten)`,
      )
      return
    }
    s.row = row
  }

  private classify(s: StreamState, bad: ChainRow, prev: Buffer | null, next: ChainRow | null): void {
    const v = bad.stream_version
    const [kind, message] = this.diagnose(bad, prev, next)
    this.breakAt(s, v, bad.event_id, kind, message)
  }

  private diagnose(bad: ChainRow, prev: Buffer | null, next: ChainRow | null): [BreakKind, string] {
    const v = bad.stream_version
    if (!bad.hash) return ['hash_altered', `version ${v} has no hash`]
    if (next?.hash && next.stream_version === v + 1) {
      if (linkOf(bad.hash, next).equals(next.hash))
        return ['changed', `the content of version ${v} differs from what was hashed`]
      if (linkOf(linkOf(prev, bad), next).equals(next.hash))
        return ['hash_altered', `the stored hash of version ${v} was changed; its content is intact`]
      if (linkOf(prev, next, v).equals(next.hash)) {
        if (linkOf(next.hash, bad, v + 1).equals(bad.hash))
          return ['reordered', `versions ${v} and ${v + 1} were swapped`]
        return ['inserted', `version ${v} was inserted: the event after it was hashed as version ${v}`]
      }
      if (linkOf(bad.hash, next, next.stream_version + 1).equals(next.hash))
        return ['missing', `an event before version ${v} was deleted and the later ones renumbered`]
    }
    return ['changed', `the content or hash of version ${v} differs from what was hashed`]
  }

  private endStream(s: StreamState): void {
    if (s.pending && !s.broken) this.classify(s, s.pending, prevOf(s), null)
    if (s.broken) return
    const head = this.headsFor(s.tenant)?.streams.get(`${s.category}/${s.stream_id}`)
    if (head && versionOf(s) < head.version)
      this.breakAt(
        s,
        versionOf(s) + 1,
        null,
        'missing',
        `the saved head is at version ${head.version}; the log ends at version ${versionOf(s)}`,
      )
  }

  private breakAt(s: StreamState, version: number, eventId: string | null, kind: BreakKind, message: string): void {
    s.broken = true
    s.pending = null
    this.report({
      tenant: s.tenant,
      category: s.category,
      stream_id: s.stream_id,
      version,
      event_id: eventId,
      kind,
      message,
    })
  }

  private report(b: ChainBreak): void {
    this.brokenStreams++
    if (this.breaks.length < this.maxBreaks) this.breaks.push(b)
  }
}
