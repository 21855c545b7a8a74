import { EventplaneError } from '@eventplane/core'
import { DiscardPolicy, RetentionPolicy, StorageType } from '@nats-io/jetstream'
import type { JetStreamManager, StreamConfig, StreamInfo } from '@nats-io/jetstream'
import { nanos } from '@nats-io/transport-node'
import { natsFailure, JS_API, isJsApiError } from './nats-errors.ts'
import { LOG_SUBJECTS, STREAM_NAME } from './subjects.ts'

export interface EnsureStreamOptions {
  /** How long JetStream remembers a `Nats-Msg-Id` (= event_id) to drop a republished event; default 2 minutes. */
  duplicateWindowMs?: number
  /** Replicas (R3 in a cluster); default 1. */
  replicas?: number
  /** Maximum message age; default 0, keep forever (PostgreSQL is the source of truth, the bus its replica). */
  maxAgeMs?: number
  /**
   * Most bytes the stream holds; default {@link DEFAULT_STREAM_MAX_BYTES}. A full stream refuses new
   * messages (`discard: new`): the relay stops publishing and waits, so nothing is ever dropped or skipped;
   * `evtctl status` shows the lag. JetStream reserves this much storage when the stream is created.
   */
  maxBytes?: number
  /** Largest message the stream accepts; default {@link DEFAULT_STREAM_MAX_MSG_SIZE}. */
  maxMsgSize?: number
}

export const DEFAULT_DUPLICATE_WINDOW_MS = 2 * 60 * 1000
/** 4 GiB: a bound, not a target; size it to the log with EVENTPLANE_STREAM_MAX_BYTES (updatable in place). */
export const DEFAULT_STREAM_MAX_BYTES = 4 * 1024 ** 3
/**
 * 256 KiB: a log message is one recorded event (64 KiB of data at most by default, plus the envelope),
 * so this leaves room for a larger configured data limit and stays under the server's 1 MiB max_payload.
 */
export const DEFAULT_STREAM_MAX_MSG_SIZE = 256 * 1024

/** JetStream API error codes we act on (nats-server `server/errors.json`). */

/** The stream config eventplane requires; the single source for create and check. */
export function eventplaneStreamConfig(options: EnsureStreamOptions = {}): Partial<StreamConfig> & { name: string } {
  return {
    name: STREAM_NAME,
    subjects: [LOG_SUBJECTS],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    deny_delete: true,
    deny_purge: true,
    allow_rollup_hdrs: false,
    duplicate_window: nanos(options.duplicateWindowMs ?? DEFAULT_DUPLICATE_WINDOW_MS),
    num_replicas: options.replicas ?? 1,
    max_age: nanos(options.maxAgeMs ?? 0),
    max_bytes: options.maxBytes ?? DEFAULT_STREAM_MAX_BYTES,
    max_msg_size: options.maxMsgSize ?? DEFAULT_STREAM_MAX_MSG_SIZE,
    discard: DiscardPolicy.New,
  }
}

/**
 * Settings JetStream cannot change on an existing stream (or that would make
 * it another stream): a difference is reported, never "fixed" by recreating,
 * because recreating would drop the log.
 */
function immutableMismatches(actual: StreamConfig): string[] {
  const problems: string[] = []
  if (actual.storage !== StorageType.File) problems.push(`storage is ${actual.storage}, expected file`)
  if (actual.retention !== RetentionPolicy.Limits) problems.push(`retention is ${actual.retention}, expected limits`)
  const subjects = actual.subjects ?? []
  if (subjects.length !== 1 || subjects[0] !== LOG_SUBJECTS)
    problems.push(`subjects are ${JSON.stringify(subjects)}, expected ["${LOG_SUBJECTS}"]`)
  if (actual.sealed) problems.push('stream is sealed')
  if (actual.mirror) problems.push('stream is a mirror')
  return problems
}

/** Fields that may be updated in place and differ from what we want. */
function updatableDifferences(actual: StreamConfig, wanted: Partial<StreamConfig>): Partial<StreamConfig> {
  const delta: Partial<StreamConfig> = {}
  // deny_delete / deny_purge can go false → true but never back; allow_rollup_hdrs may be turned off.
  if (!actual.deny_delete) delta.deny_delete = true
  if (!actual.deny_purge) delta.deny_purge = true
  if (actual.allow_rollup_hdrs) delta.allow_rollup_hdrs = false
  if (actual.duplicate_window !== wanted.duplicate_window) delta.duplicate_window = wanted.duplicate_window
  if (actual.max_age !== wanted.max_age) delta.max_age = wanted.max_age
  if (actual.num_replicas !== wanted.num_replicas) delta.num_replicas = wanted.num_replicas
  if (actual.max_bytes !== wanted.max_bytes) delta.max_bytes = wanted.max_bytes
  if (actual.max_msg_size !== wanted.max_msg_size) delta.max_msg_size = wanted.max_msg_size
  if (actual.discard !== wanted.discard) delta.discard = wanted.discard
  return delta
}

/** The info of stream `name`, or undefined when it does not exist. */
export async function streamInfo(jsm: JetStreamManager, name = STREAM_NAME): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name)
  } catch (e) {
    if (isJsApiError(e, JS_API.streamNotFound)) return undefined
    throw natsFailure(e, `read stream ${name}`)
  }
}

/**
 * Creates a stream with `config` when none of its name exists; `created`
 * says whether this call made it. When another process creates it between
 * the look and the add, theirs is read instead (its settings for the caller
 * to check). The server answers that race with "name in use" (10058) or, when
 * the two creates overlap inside nats-server 2.9 (its per-name guard in
 * `addStream` can let both past the name check), with "subjects overlap"
 * (10065) against the stream the other create just registered: both count as
 * "someone else made it" only when a stream of our name now exists; an overlap
 * with a stream of another name fails as it is (`bus.stream_mismatch`, api_code 10065).
 */
export async function createOrLoadStream(
  jsm: JetStreamManager,
  config: Partial<StreamConfig> & { name: string },
): Promise<{ info: StreamInfo; created: boolean }> {
  const existing = await streamInfo(jsm, config.name)
  if (existing !== undefined) return { info: existing, created: false }
  try {
    return { info: await jsm.streams.add(config), created: true }
  } catch (e) {
    if (!isJsApiError(e, JS_API.streamNameInUse, JS_API.streamSubjectOverlap))
      throw natsFailure(e, `create stream ${config.name}`)
    const theirs = await streamInfo(jsm, config.name)
    if (theirs === undefined) throw natsFailure(e, `create stream ${config.name}`)
    return { info: theirs, created: false }
  }
}

/**
 * Creates the `EVENTPLANE` stream with default settings when it does not
 * exist, and leaves an existing one as it is (its settings belong to the
 * relay's {@link ensureStream}). For `evtctl tenant add`, which provisions
 * tenant consumers and may run before any relay has.
 */
export async function ensureStreamExists(jsm: JetStreamManager): Promise<StreamInfo> {
  return (await streamInfo(jsm)) ?? ensureStream(jsm)
}

/**
 * Creates the `EVENTPLANE` stream, or checks an existing one: updatable
 * settings (duplicate window, max age, replicas, size limits, discard
 * new, turning deny_delete / deny_purge on, rollups off) are brought in line; anything else that differs
 * fails with `bus.stream_mismatch` and the existing stream is left untouched.
 * Safe to call from every relay at startup, concurrently. Returns the
 * stream's info after the call.
 */
export async function ensureStream(jsm: JetStreamManager, options: EnsureStreamOptions = {}): Promise<StreamInfo> {
  const wanted = eventplaneStreamConfig(options)
  const { info, created } = await createOrLoadStream(jsm, wanted)
  if (created) return info
  const problems = immutableMismatches(info.config)
  if (problems.length > 0) {
    throw new EventplaneError(
      'bus.stream_mismatch',
      `stream ${STREAM_NAME} exists with settings that cannot be updated: ${problems.join('; ')}`,
      {
        details: { stream: STREAM_NAME, problems },
      },
    )
  }
  const delta = updatableDifferences(info.config, wanted)
  if (Object.keys(delta).length === 0) return info
  try {
    return await jsm.streams.update(STREAM_NAME, delta)
  } catch (e) {
    throw natsFailure(e, `update stream ${STREAM_NAME} (${Object.keys(delta).join(', ')})`)
  }
}
