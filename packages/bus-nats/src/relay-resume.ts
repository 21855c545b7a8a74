import { type Checkpoint, EventplaneError, START, compareCheckpoints } from '@eventplane/core'
import { type RelayRecord, type Sql, logHoldsEvent } from '@eventplane/store-pg'
import type { JetStreamManager, StoredMsg, StreamInfo } from '@nats-io/jetstream'
import { readEventHeaders } from './codec.ts'
import type { Logger } from './logger.ts'
import { natsFailure } from './nats-errors.ts'
import { STREAM_NAME } from './subjects.ts'

/**
 * The operator's next step, on the refusal's one line (the relay exits with it): deleting the stream is the remedy,
 * but only once its origin is known, since it may hold events the log lacks (an older backup restored).
 */
const FOREIGN_STREAM_NEXT =
  'find out where it came from (a log restored or moved by evtctl import, another deployment) before deleting it ' +
  'as the operator: a relay fills a new stream from the start of this log (docs/operating.md)'

/**
 * The stream's last message is not an event of this log (another
 * deployment's stream, or a message the relay never published): the relay
 * refuses to publish into it. Fatal: an operator must look at the stream.
 */
export class ForeignStream extends EventplaneError {
  constructor(seq: number, event: { eventId: string; txId: bigint; position: bigint } | undefined) {
    // The place counts: a log restored by import holds the same event ids at other (tx_id, position)s.
    const what =
      event === undefined
        ? `message ${seq} carries no event headers`
        : `event ${event.eventId} (message ${seq}) is not in the log at ${event.txId}:${event.position}`
    super('bus.config', `stream ${STREAM_NAME} is not this log's: its last ${what}; ${FOREIGN_STREAM_NEXT}`, {
      details: { stream: STREAM_NAME, seq, event_id: event?.eventId ?? null },
    })
  }
}

/** Where the relay resumes publishing into a stream, and why. */
export interface ResumePoint {
  checkpoint: Checkpoint
  /**
   * What decided it: `stream_tip`, the stream's last message (an event of
   * this log); `empty_stream`, a stream that never held a message;
   * `created`, the stored checkpoint against the stream's `created` (every
   * message aged out, so the content says nothing).
   */
  basis: 'stream_tip' | 'empty_stream' | 'created'
  /** A stored checkpoint past START was dropped: the stream is not the one it was stored for. */
  replaced: boolean
  /** Store the checkpoint even when it moves the stored one backwards. */
  reset: boolean
  /** The event id of the stream's last message (basis `stream_tip`): what the next publish expects to follow. */
  eventId?: string
}

/**
 * Decides where to resume by the stream's content, not by its `created`
 * timestamp (which nats-server before 2.9.16 can get wrong when two creates
 * race, and which says nothing about how far a stream got). Only relays
 * publish into the stream, in log order, each event right after its
 * predecessor within a run: so the stream holds a prefix of the log, and its
 * last message says where that prefix ends, whatever the stored checkpoint
 * says (it lags after a crash, since it is written in the background, and is
 * ahead when the stream lost its tail or was recreated and partly filled).
 *
 * - no message ever (`last_seq` 0): START; a stored checkpoint past START
 *   means the stream was replaced;
 * - a last message that is this log's event at that (tx id, position) with
 *   that id: right after it;
 * - a last message that is not: {@link ForeignStream};
 * - messages once but none now (all aged out by `max_age`): the stored
 *   checkpoint if it was stored for this stream (same `created`), else
 *   START when it was stored for another one (or the stream is empty and the
 *   row predates `created`).
 *
 * The read of the last message goes through `onServer` (a relay's RelayStop.onServer: its stop tells a server
 * that did not answer it).
 */
export async function resumePoint(
  jsm: JetStreamManager,
  sql: Sql,
  stream: StreamInfo,
  stored: RelayRecord | undefined,
  onServer: <T>(request: Promise<T>) => Promise<T> = (request) => request,
): Promise<ResumePoint> {
  const published = stored !== undefined && compareCheckpoints(stored.checkpoint, START) > 0
  if (stream.state.last_seq === 0) return { checkpoint: START, basis: 'empty_stream', replaced: published, reset: true }
  const last = stream.state.messages === 0 ? null : await onServer(streamMessage(jsm, stream.state.last_seq))
  if (last === null) return createdRule(stream, stored)
  const event = readEventHeaders(last.header)
  if (event === undefined || !(await logHoldsEvent(sql, event))) throw new ForeignStream(last.seq, event)
  return {
    checkpoint: { txId: event.txId, position: event.position },
    basis: 'stream_tip',
    replaced: false,
    reset: true,
    eventId: event.eventId,
  }
}

/** The rule for a stream whose messages all aged out: trust the checkpoint stored for this very stream. */
function createdRule(stream: StreamInfo, stored: RelayRecord | undefined): ResumePoint {
  if (stored === undefined || stored.streamCreated === stream.created)
    return { checkpoint: stored?.checkpoint ?? START, basis: 'created', replaced: false, reset: false }
  const published = compareCheckpoints(stored.checkpoint, START) > 0
  // A row from before `created` was recorded (migration 0004) is trusted unless the stream is empty.
  const replaced = published && (stored.streamCreated !== null || stream.state.messages === 0)
  return { checkpoint: replaced ? START : stored.checkpoint, basis: 'created', replaced, reset: replaced }
}

/** Message `seq` of the stream, null when it is gone (aged out since the stream's info was read). */
async function streamMessage(jsm: JetStreamManager, seq: number): Promise<StoredMsg | null> {
  try {
    return await jsm.streams.getMessage(STREAM_NAME, { seq })
  } catch (e) {
    throw natsFailure(e, `read message ${seq} of stream ${STREAM_NAME}`)
  }
}

/**
 * Warns when `version` (the connected nats-server's) has the stream create race (see docs/deploying.md, "Server
 * version"); true when it warned (a relay warns once).
 */
export function warnOldServer(version: string | undefined, logger: Logger, relay: string): boolean {
  if (!versionOlderThan(version, STREAM_CREATE_RACE_FIXED_IN)) return false
  logger.warn(
    { relay, version, upgrade_to: STREAM_CREATE_RACE_FIXED_IN },
    'nats-server before 2.9.16 can tell two concurrent creates of a stream that both made it; upgrade it',
  )
  return true
}

/** The first nats-server release whose concurrent creates of one stream cannot both succeed (nats-server PR 4013). */
export const STREAM_CREATE_RACE_FIXED_IN = '2.9.16'

/** True when `version` (nats-server's `x.y.z`, maybe with a suffix) is older than `than`; false when unparsable. */
export function versionOlderThan(version: string | undefined, than: string): boolean {
  const parse = (v: string): number[] | undefined => {
    const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(v)
    return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined
  }
  const a = version === undefined ? undefined : parse(version)
  const b = parse(than)
  if (a === undefined || b === undefined) return false
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! < b[i]!
  return false
}
