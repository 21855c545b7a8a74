import { EventplaneError } from '@eventplane/core'
import type { HeadsFile } from '@eventplane/store-pg'
import { DiscardPolicy, RetentionPolicy, StorageType } from '@nats-io/jetstream'
import type { JetStreamClient, JetStreamManager, StreamConfig, StreamInfo } from '@nats-io/jetstream'
import { nanos } from '@nats-io/transport-node'
import { natsFailure, JS_API, isJsApiError } from './nats-errors.ts'
import { createOrLoadStream } from './stream.ts'
import { HEADS_STREAM_NAME, HEADS_SUBJECTS, headsSubject } from './subjects.ts'

/** 1 GiB: every publish is kept (a new one only when a tenant's heads changed); raise it for years of history. */
export const DEFAULT_HEADS_STREAM_MAX_BYTES = 1024 ** 3
/**
 * 1 MiB, nats-server's default max_payload: a heads message is a whole heads
 * file, about 130 bytes per stream, so about 7,500 streams per tenant.
 */
export const DEFAULT_HEADS_MAX_MSG_SIZE = 1024 * 1024

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
  /** JetStream already held this very heads file (same tenant, point and digest, within 2 minutes). */
  duplicate: boolean
}

/**
 * Publishes a heads file (as `evtctl heads` writes it) on its tenant's
 * subject and waits for JetStream's ack. `Nats-Msg-Id` is tenant, point and
 * digest, so two publishers of the same heads store it once.
 */
export async function publishHeads(js: JetStreamClient, file: HeadsFile): Promise<PublishedHeads> {
  const subject = headsSubject(file.tenant)
  try {
    const ack = await js.publish(subject, JSON.stringify(file), {
      msgID: `${file.tenant}:${file.tx_id}:${file.global_position}:${file.digest}`,
      expect: { streamName: HEADS_STREAM_NAME },
    })
    return { subject, seq: ack.seq, duplicate: ack.duplicate }
  } catch (e) {
    throw natsFailure(e, `publish heads of ${file.tenant} on ${subject}`)
  }
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

const stored = (m: StreamMessage): StoredHeads => {
  let file: unknown
  try {
    file = m.json()
  } catch {
    file = undefined
  }
  return { seq: m.seq, published_at: m.time.toISOString(), file }
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
    const s = stored(m)
    try {
      return { found: { ...s, heads: accept(s.file) }, refused }
    } catch (e) {
      refused.push({ seq: s.seq, reason: e instanceof Error ? e.message : String(e) })
      if (refused.length >= MAX_REFUSED_HEADS) break
    }
  }
  return { found: undefined, refused }
}
