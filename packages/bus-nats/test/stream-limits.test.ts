/**
 * The stream's limits (mutation audit 2026-11-30, NATS boundary): a full stream refuses new messages and keeps
 * every one it holds (`discard: new`), and an existing stream made with other limits is brought in line, not
 * left to drop the log's oldest events.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { isEventplaneError } from '@eventplane/core'
import { DiscardPolicy, JetStreamApiError, RetentionPolicy, StorageType, jetstream } from '@nats-io/jetstream'
import { DEFAULT_STREAM_MAX_BYTES, DEFAULT_STREAM_MAX_MSG_SIZE, ensureStream } from '../src/stream.ts'
import { LOG_SUBJECTS, STREAM_NAME, logSubject } from '../src/subjects.ts'
import { useStreamServer } from './support/stream-server.ts'

describe('stream limits', () => {
  const nats = useStreamServer()

  test('a full stream refuses the next message and keeps every one it holds (discard new)', async () => {
    const info = await ensureStream(nats.operator, { maxBytes: 4096 })
    assert.equal(info.config.discard, DiscardPolicy.New)
    const js = jetstream(await nats.server.connect('relay'))
    const body = 'x'.repeat(1000)
    let refused: unknown
    let stored = 0
    for (let i = 1; i <= 10 && refused === undefined; i++) {
      const id = `0190f0c2-0000-7000-8000-${String(i).padStart(12, '0')}`
      try {
        await js.publish(logSubject('fact', 'acme', 'orders', `o-${i}`), body, { msgID: id })
        stored += 1
      } catch (e) {
        refused = e
      }
    }
    assert.ok(refused instanceof JetStreamApiError, `the full stream refused a publish (${String(refused)})`)
    const state = (await nats.operator.streams.info(STREAM_NAME)).state
    assert.ok(stored >= 1 && stored < 10, `stored ${stored}`)
    assert.equal(state.first_seq, 1, 'the oldest message is still there')
    assert.equal(state.messages, stored)
  })

  test('an existing stream with other limits gets discard new, no rollups and the wanted sizes', async () => {
    await nats.operator.streams.add({
      name: STREAM_NAME,
      subjects: [LOG_SUBJECTS],
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      allow_rollup_hdrs: true,
      max_bytes: 1024 * 1024,
      max_msg_size: 1024,
    })
    const info = await ensureStream(nats.operator)
    assert.equal(info.config.discard, DiscardPolicy.New)
    assert.equal(info.config.allow_rollup_hdrs, false)
    assert.equal(info.config.max_bytes, DEFAULT_STREAM_MAX_BYTES)
    assert.equal(info.config.max_msg_size, DEFAULT_STREAM_MAX_MSG_SIZE)
    const now = await nats.operator.streams.info(STREAM_NAME)
    assert.equal(now.config.discard, DiscardPolicy.New, 'what the server holds, not only the answer')
    assert.equal(now.config.max_msg_size, DEFAULT_STREAM_MAX_MSG_SIZE)
  })

  test('a new stream takes the configured sizes: a message over max_msg_size is refused', async () => {
    const info = await ensureStream(nats.operator, { maxMsgSize: 2048 })
    assert.equal(info.config.max_msg_size, 2048)
    const js = jetstream(await nats.server.connect('relay'))
    await assert.rejects(
      js.publish(logSubject('fact', 'acme', 'orders', 'o-big'), 'x'.repeat(4096), {
        msgID: '0190f0c2-0000-7000-8000-00000000b001',
      }),
      JetStreamApiError,
    )
    assert.equal((await nats.operator.streams.info(STREAM_NAME)).state.messages, 0)
  })

  test('an existing stream that drops messages once consumed (work-queue or interest retention) is refused and left as it was', async () => {
    for (const retention of [RetentionPolicy.Workqueue, RetentionPolicy.Interest]) {
      await nats.operator.streams.delete(STREAM_NAME).catch(() => false)
      await nats.operator.streams.add({
        name: STREAM_NAME,
        subjects: [LOG_SUBJECTS],
        storage: StorageType.File,
        retention,
      })
      await assert.rejects(
        ensureStream(nats.operator),
        (e) => isEventplaneError(e, 'bus.stream_mismatch') && /retention is/.test(e.message),
        retention,
      )
      assert.equal((await nats.operator.streams.info(STREAM_NAME)).config.retention, retention)
    }
  })
})
