/**
 * resumePoint against a real stream and log (mutation audit 2026-11-30, NATS boundary): where a relay resumes,
 * and the event id its next publish expects, for a stream whose tip is an event of the log and for one whose
 * messages all aged out (only then does the stored checkpoint count, and only for the stream it was stored for).
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type RecordedEvent, START } from '@eventplane/core'
import { ROLES, type Sql } from '@eventplane/store-pg'
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream'
import { encodeEvent, eventHeaders } from '../src/codec.ts'
import { resumePoint } from '../src/relay-resume.ts'
import { ensureStream } from '../src/stream.ts'
import { STREAM_NAME, logSubject } from '../src/subjects.ts'
import { type BusEnv, appendIntents, createBusEnv, eventually, pgLog } from './fixtures.ts'

const at = (e: RecordedEvent) => ({ txId: e.tx_id, position: e.global_position })

describe('resumePoint', () => {
  let env: BusEnv
  let jsm: JetStreamManager
  let js: JetStreamClient
  let sql: Sql
  let log: RecordedEvent[]

  before(async () => {
    env = await createBusEnv('ep_resumepoint', [])
    const operator = await env.natsAs('operator')
    jsm = await jetstreamManager(operator)
    js = jetstream(operator)
    sql = env.db.connect(ROLES.relay, 1)
    await appendIntents(env.intents, 'acme', 3, 3, 'resume')
    log = await pgLog(env.relayStore)
  })
  after(async () => {
    await env?.cleanup()
  })

  const publishAsRelay = async (events: RecordedEvent[]): Promise<void> => {
    for (const e of events) {
      const subject = logSubject(e.kind, e.tenant_id, e.stream.category, e.stream.id)
      await js.publish(subject, encodeEvent(e), { headers: eventHeaders(e) })
    }
  }

  test('a stream whose tip is an event of the log: right after it, expecting its id, whatever the stored checkpoint says', async () => {
    await jsm.streams.delete(STREAM_NAME).catch(() => false)
    await ensureStream(jsm)
    await publishAsRelay(log.slice(0, 2))
    const info = await jsm.streams.info(STREAM_NAME)
    for (const stored of [undefined, { checkpoint: at(log[2]!), streamCreated: info.created }]) {
      const point = await resumePoint(jsm, sql, info, stored)
      assert.deepEqual(
        point,
        { checkpoint: at(log[1]!), basis: 'stream_tip', replaced: false, reset: true, eventId: log[1]!.event_id },
        JSON.stringify(stored?.streamCreated ?? null),
      )
    }
  })

  test('a stream whose messages all aged out: the checkpoint stored for this stream, START for one stored for another', async () => {
    await jsm.streams.delete(STREAM_NAME).catch(() => false)
    await ensureStream(jsm, { maxAgeMs: 1000, duplicateWindowMs: 1000 })
    await publishAsRelay(log.slice(0, 1))
    await eventually(async () => (await jsm.streams.info(STREAM_NAME)).state.messages === 0, 'the message to age out')
    const info = await jsm.streams.info(STREAM_NAME)
    assert.equal(info.state.last_seq, 1)
    const cases: Array<[Parameters<typeof resumePoint>[3], object]> = [
      [
        { checkpoint: at(log[0]!), streamCreated: info.created },
        { checkpoint: at(log[0]!), basis: 'created', replaced: false, reset: false },
      ],
      [
        { checkpoint: at(log[0]!), streamCreated: '2020-01-01T00:00:00Z' },
        { checkpoint: START, basis: 'created', replaced: true, reset: true },
      ],
      [undefined, { checkpoint: START, basis: 'created', replaced: false, reset: false }],
      [
        { checkpoint: START, streamCreated: '2020-01-01T00:00:00Z' },
        { checkpoint: START, basis: 'created', replaced: false, reset: false },
      ],
    ]
    for (const [stored, expected] of cases) {
      assert.deepEqual(await resumePoint(jsm, sql, info, stored), expected, JSON.stringify(stored?.streamCreated))
    }
  })
})
