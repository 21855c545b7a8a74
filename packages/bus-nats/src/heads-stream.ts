import { EventplaneError } from '@eventplane/core'
import { type ChainHeads, type HeadsFile, checkHeads } from '@eventplane/store-pg'
import { DiscardPolicy, RetentionPolicy, StorageType } from '@nats-io/jetstream'
import type { JetStreamClient, JetStreamManager, StreamConfig, StreamInfo } from '@nats-io/jetstream'
import { nanos } from '@nats-io/transport-node'
import { natsFailure, JS_API, isJsApiError } from './nats-errors.ts'
import { createOrLoadStream } from './stream.ts'
import { HEADS_STREAM_NAME, HEADS_SUBJECTS, headsPartsSubject, headsSubject } from './subjects.ts'

/** 1 GiB: every publish is kept (a new one only when a tenant's heads changed); raise it for years of history. */
export const DEFAULT_HEADS_STREAM_MAX_BYTES = 1024 ** 3
/** 1 MiB, nats-server's default max_payload: the largest heads message the stream takes. */
export const DEFAULT_HEADS_MAX_MSG_SIZE = 1024 * 1024

/**
 * Heads files larger than this (about 130 bytes per stream: ~4,000 streams)
 * are published in parts of at most this size plus one message listing them;
 * half the default max_payload, so a server with the default takes every part.
 */
export const DEFAULT_HEADS_PART_BYTES = 512 * 1024

/** Parts one heads message may list (10,000 parts of 512 KiB: ~40 million streams). */
const MAX_HEADS_PARTS = 10_000

/** The format tag of one part of a heads file published in parts. */
const HEADS_PART_FORMAT = 'eventplane.heads-part.v1'

/** One part: a slice of the heads file's streams, tied to its tenant, digest and place. */
interface HeadsPart {
  format: typeof HEADS_PART_FORMAT
  tenant: string
  digest: string
  index: number
  streams: HeadsFile['streams']
}

export interface HeadsStreamOptions {
  /** Most bytes kept; default {@link DEFAULT_HEADS_STREAM_MAX_BYTES}. Full, it refuses new heads (`discard: new`). */
  maxBytes?: number
  replicas?: number
}

/**
 * History kept and unerasable: every message of every tenant (no per-subject
 * limit, no age), `deny_delete` and `deny_purge` (nobody, the operator
 * included, can remove one heads message or purge the stream; JetStream can
 * turn them on but never off), no rollups, `discard: new` (a full stream
 * refuses new heads instead of dropping the oldest).
 */
export function headsStreamConfig(options: HeadsStreamOptions = {}): Partial<StreamConfig> & { name: string } {
  return {
    name: HEADS_STREAM_NAME,
    subjects: [HEADS_SUBJECTS],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    deny_delete: true,
    deny_purge: true,
    allow_rollup_hdrs: false,
    max_msgs_per_subject: -1,
    max_age: nanos(0),
    max_bytes: options.maxBytes ?? DEFAULT_HEADS_STREAM_MAX_BYTES,
    max_msg_size: DEFAULT_HEADS_MAX_MSG_SIZE,
    discard: DiscardPolicy.New,
    num_replicas: options.replicas ?? 1,
    duplicate_window: nanos(2 * 60 * 1000),
  }
}

/**
 * Creates the heads stream, or checks an existing one: its subjects and
 * storage must be ours (else `bus.stream_mismatch`), and `deny_delete`,
 * `deny_purge` and no rollups are turned on if someone created it without.
 * Safe to call concurrently.
 */
export async function ensureHeadsStream(jsm: JetStreamManager, options: HeadsStreamOptions = {}): Promise<StreamInfo> {
  const { info, created } = await createOrLoadStream(jsm, headsStreamConfig(options))
  if (created) return info
  const c = info.config
  const subjects = c.subjects ?? []
  if (subjects.length !== 1 || subjects[0] !== HEADS_SUBJECTS || c.storage !== StorageType.File || c.mirror)
    throw new EventplaneError(
      'bus.stream_mismatch',
      `stream ${HEADS_STREAM_NAME} exists with other subjects or storage than ["${HEADS_SUBJECTS}"] on file`,
      { details: { stream: HEADS_STREAM_NAME } },
    )
  if (c.deny_delete && c.deny_purge && !c.allow_rollup_hdrs) return info
  try {
    return await jsm.streams.update(HEADS_STREAM_NAME, {
      deny_delete: true,
      deny_purge: true,
      allow_rollup_hdrs: false,
    })
  } catch (e) {
    throw natsFailure(e, `update stream ${HEADS_STREAM_NAME}`)
  }
}

/** Where a heads file was published: the stream's sequence. */
export interface PublishedHeads {
  subject: string
  seq: number
  /** JetStream already held this very heads file (same tenant, point, digest and signature, within 2 minutes). */
  duplicate: boolean
  /** Parts published on {@link headsPartsSubject} before this message (0: the file is this one message). */
  parts: number
}

/** The streams of `file` in slices whose JSON stays within `partBytes` (at least one stream per slice). */
function sliceStreams(streams: HeadsFile['streams'], partBytes: number): HeadsFile['streams'][] {
  const slices: HeadsFile['streams'][] = []
  let slice: HeadsFile['streams'] = []
  let bytes = 0
  for (const s of streams) {
    const size = Buffer.byteLength(JSON.stringify(s)) + 1
    if (slice.length > 0 && bytes + size > partBytes) {
      slices.push(slice)
      slice = []
      bytes = 0
    }
    slice.push(s)
    bytes += size
  }
  if (slice.length > 0) slices.push(slice)
  return slices
}

/**
 * Publishes a heads file (as `evtctl heads` writes it) on its tenant's
 * subject and waits for JetStream's ack. `Nats-Msg-Id` is tenant, point,
 * digest and signature, so two publishers of the same heads (unsigned, or
 * signed by the same key) store them once. A file larger
 * than `partBytes` goes out as parts on {@link headsPartsSubject} first, then
 * one message on the tenant's subject: the file without its streams, listing
 * the parts' sequences (`parts`). The digest over all streams (and the
 * signature over it) is the file's, so a part that does not belong makes the
 * whole refused when read.
 */
export async function publishHeads(
  js: JetStreamClient,
  file: HeadsFile,
  partBytes = DEFAULT_HEADS_PART_BYTES,
): Promise<PublishedHeads> {
  const subject = headsSubject(file.tenant)
  const msgID = `${file.tenant}:${file.tx_id}:${file.global_position}:${file.digest}`
  // The listing's id names its signature too (Ed25519 signs deterministically: one key, one id), or the
  // same heads published unsigned a moment before would make JetStream drop the signed ones as a duplicate.
  const listingID = `${msgID}:${file.signature?.value ?? 'unsigned'}`
  const publish = async (to: string, body: unknown, id: string) => {
    try {
      return await js.publish(to, JSON.stringify(body), { msgID: id, expect: { streamName: HEADS_STREAM_NAME } })
    } catch (e) {
      throw natsFailure(e, `publish heads of ${file.tenant} on ${to}`)
    }
  }
  let body: HeadsFile | (Omit<HeadsFile, 'streams'> & { parts: number[] }) = file
  if (Buffer.byteLength(JSON.stringify(file)) > partBytes) {
    const { streams, ...rest } = file
    const parts: number[] = []
    for (const [index, slice] of sliceStreams(streams, partBytes).entries()) {
      const part: HeadsPart = {
        format: HEADS_PART_FORMAT,
        tenant: file.tenant,
        digest: file.digest,
        index,
        streams: slice,
      }
      parts.push((await publish(headsPartsSubject(file.tenant), part, `${msgID}:part:${index}`)).seq)
    }
    body = { ...rest, parts }
  }
  const ack = await publish(subject, body, listingID)
  return { subject, seq: ack.seq, duplicate: ack.duplicate, parts: 'parts' in body ? body.parts.length : 0 }
}

/** A heads message as stored: its sequence, when it was published, its body parsed (not checked). */
export interface StoredHeads {
  seq: number
  published_at: string
  file: unknown
}

/** The newest heads message `accept` took, with what it made of it, and the newer ones it refused. */
export interface PublishedHeadsLookup<T> {
  found: (StoredHeads & { heads: T }) | undefined
  /** Newer messages on the tenant's subject that `accept` refused, newest first, with why. */
  refused: { seq: number; reason: string }[]
}

/** Messages refused before the look-up gives up (an anchor buried that deep is not one to trust). */
export const MAX_REFUSED_HEADS = 1000

type StreamMessage = NonNullable<Awaited<ReturnType<JetStreamManager['streams']['getMessage']>>>

/** One message of the heads stream by query, `null` when there is none; stream not found is `null` too. */
async function getHeadsMessage(jsm: JetStreamManager, query: object, tenant: string): Promise<StreamMessage | null> {
  try {
    // `next_by_subj` with `seq` (the first message on the subject at or after seq) is in the server's
    // STREAM.MSG.GET API but not in nats.js's type for it.
    return await jsm.streams.getMessage(HEADS_STREAM_NAME, query as { seq: number })
  } catch (e) {
    if (isJsApiError(e, JS_API.streamNotFound)) return null
    throw natsFailure(e, `read the heads of ${tenant} from ${HEADS_STREAM_NAME}`)
  }
}

/**
 * The tenant's heads messages, newest first: the newest by `last_by_subj`,
 * then back through windows of the stream (doubling) read forward with
 * `next_by_subj`. Other tenants' messages are never fetched.
 */
async function* headsNewestFirst(jsm: JetStreamManager, tenant: string): AsyncGenerator<StreamMessage> {
  const subject = headsSubject(tenant)
  const newest = await getHeadsMessage(jsm, { last_by_subj: subject }, tenant)
  if (newest === null) return
  yield newest
  let before = newest.seq
  for (let span = 16; before > 1; span *= 2) {
    const from = Math.max(1, before - span)
    const window: StreamMessage[] = []
    for (let m = await getHeadsMessage(jsm, { seq: from, next_by_subj: subject }, tenant); m && m.seq < before; ) {
      window.push(m)
      m = await getHeadsMessage(jsm, { seq: m.seq + 1, next_by_subj: subject }, tenant)
    }
    yield* window.reverse()
    before = from
  }
}

/**
 * A heads message as stored, its body parsed; a body that lists parts comes
 * back whole: the parts read by sequence and their streams put back in place.
 * A listed part that is missing, on another subject, or not a part of this
 * tenant's file with this digest at this index throws (the message is refused).
 */
async function stored(jsm: JetStreamManager, tenant: string, m: StreamMessage): Promise<StoredHeads> {
  let file: unknown
  try {
    file = m.json()
  } catch {
    file = undefined
  }
  const listed = (file as { parts?: unknown } | undefined)?.parts
  if (Array.isArray(listed)) {
    if (
      listed.length === 0 ||
      listed.length > MAX_HEADS_PARTS ||
      !listed.every((n) => Number.isSafeInteger(n) && n > 0)
    )
      throw new Error(`the message lists ${listed.length} parts, not 1 to ${MAX_HEADS_PARTS} stream sequences`)
    const { parts: _, ...rest } = file as HeadsFile & { parts: number[] }
    const streams: HeadsFile['streams'] = []
    for (const [index, seq] of (listed as number[]).entries()) {
      const pm = await getHeadsMessage(jsm, { seq }, tenant)
      let part: Partial<HeadsPart> | undefined
      try {
        part = pm?.subject === headsPartsSubject(tenant) ? pm.json<Partial<HeadsPart>>() : undefined
      } catch {
        part = undefined
      }
      if (
        part?.format !== HEADS_PART_FORMAT ||
        part.tenant !== tenant ||
        part.digest !== rest.digest ||
        part.index !== index ||
        !Array.isArray(part.streams)
      )
        throw new Error(`part ${index} (sequence ${seq}) is missing or not a part of these heads`)
      streams.push(...part.streams)
    }
    file = { ...rest, streams }
  }
  return { seq: m.seq, published_at: m.time.toISOString(), file }
}

/**
 * An `accept` for {@link latestPublishedHeads}: the message checks as
 * `tenant`'s heads (`checkHeads`), signed by `publicKey` (PEM) when given.
 */
export function headsOfTenant(tenant: string, publicKey?: string | Buffer): (file: unknown) => ChainHeads {
  return (file) => {
    const heads = checkHeads(file, publicKey)
    if (heads.tenant !== tenant) throw new Error(`the message holds tenant ${heads.tenant}'s heads`)
    return heads
  }
}

/**
 * The newest heads published for `tenant` that `accept` takes: it checks a
 * message's parsed body (tenant, format, digest, signature) and returns what
 * it made of it, or throws to refuse it. Anyone allowed to publish on the
 * heads subjects (the relay's or the operator's credentials) could publish a
 * newer message that is not heads, or heads nobody signed; those are skipped
 * and listed in `refused`, so they neither hide the real anchor nor become
 * one. `found` is `undefined` when no message was taken (none published, the
 * heads stream does not exist, or {@link MAX_REFUSED_HEADS} refused first).
 */
export async function latestPublishedHeads<T = unknown>(
  jsm: JetStreamManager,
  tenant: string,
  accept: (file: unknown) => T = (file) => file as T,
): Promise<PublishedHeadsLookup<T>> {
  const refused: PublishedHeadsLookup<T>['refused'] = []
  for await (const m of headsNewestFirst(jsm, tenant)) {
    try {
      const s = await stored(jsm, tenant, m)
      return { found: { ...s, heads: accept(s.file) }, refused }
    } catch (e) {
      if (e instanceof EventplaneError && e.code.startsWith('bus.')) throw e
      refused.push({ seq: m.seq, reason: e instanceof Error ? e.message : String(e) })
      if (refused.length >= MAX_REFUSED_HEADS) break
    }
  }
  return { found: undefined, refused }
}
