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

/** The newest published heads of a tenant, as stored (check it with `checkHeads` before trusting it). */
export interface StoredHeads {
  seq: number
  published_at: string
  file: unknown
}

/**
 * The newest heads published for `tenant`, or `undefined` when none were
 * (or the heads stream does not exist). The body is parsed, not checked.
 */
export async function latestPublishedHeads(jsm: JetStreamManager, tenant: string): Promise<StoredHeads | undefined> {
  const subject = headsSubject(tenant)
  let m: Awaited<ReturnType<JetStreamManager['streams']['getMessage']>>
  try {
    m = await jsm.streams.getMessage(HEADS_STREAM_NAME, { last_by_subj: subject })
  } catch (e) {
    if (isJsApiError(e, JS_API.streamNotFound)) return undefined
    throw natsFailure(e, `read the latest heads of ${tenant} from ${HEADS_STREAM_NAME}`)
  }
  if (m === null) return undefined
  let file: unknown
  try {
    file = m.json()
  } catch {
    file = undefined
  }
  return { seq: m.seq, published_at: m.time.toISOString(), file }
}
