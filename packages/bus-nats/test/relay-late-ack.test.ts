import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventFactory, isEventplaneError } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import { relayMessage } from '../src/relay-encode.ts'
import { OrderedPublisher } from '../src/relay-publisher.ts'
import { ensureStream } from '../src/stream.ts'
import { STREAM_NAME } from '../src/subjects.ts'
import { startNatsServer, type TestNatsServer } from '../src/testing/index.ts'
import { streamMessages, within } from './fixtures.ts'
import { holdOneAck } from './support/late-ack.ts'

const TIMEOUT_MS = 2000

/**
 * The relay's publisher gives up on a publish whose ack does not come by its deadline; the stream may still
 * have stored it, and its ack may still come. That late ack must settle nothing: the publish already failed
 * the run and was counted out of the window, and the acked prefix (what the relay checkpoints) stops before
 * it. A proxy holds the stream's ack of the second of three publishes past the deadline, then lets it through.
 */
describe('relay publisher: a late ack', () => {
  let db: TestDatabase
  let nats: TestNatsServer
  let nc: NatsConnection

  before(async () => {
    db = await createTestDatabase('ep_relay_late_ack')
    nats = await startNatsServer({ withAuth: false })
    nc = await nats.connect()
  })
  after(async () => {
    await nc?.close()
    await nats?.stop()
    await db?.drop()
  })

  test('an ack that comes after its publish timed out settles nothing: the prefix, the failure and the window stay', async () => {
    await ensureStream(await jetstreamManager(nc))
    const f = EventFactory.forTenant('acme', { causedBy: 'user:test' })
    const s = { tenant: 'acme', category: 'deployment', id: 'late' }
    await new PgEventStore(db.connect(ROLES.intentWriter, 1), { notifyAppends: false }).append(s, [
      f.intent(s, 'scaled', { n: 1 }),
      f.intent(s, 'scaled', { n: 2 }),
      f.intent(s, 'scaled', { n: 3 }),
    ])
    let rows: Parameters<typeof relayMessage>[0][] = []
    for await (const page of new PgEventStore(db.connect(ROLES.relay, 1)).readAllText({ batchSize: 1000 }))
      rows = [...rows, ...page]
    const [a, b, c] = rows.map(relayMessage)
    const ids = [a, b, c].map((m) => m!.event.event_id)

    const late = await holdOneAck(nats.port, 1)
    const gated = await nats.connect('operator', { servers: late.url, maxReconnectAttempts: 0 })
    const publisher = new OrderedPublisher(gated, { maxInFlight: 4, timeoutMs: TIMEOUT_MS, stream: STREAM_NAME })
    const observed = () => ({
      failed: publisher.failed,
      timedOut: isEventplaneError(publisher.failure, 'bus.timeout'),
      stuck: publisher.stuck?.event.event_id,
      prefix: { last: publisher.prefix.last?.event.event_id, acked: publisher.prefix.acked },
      inFlight: publisher.inFlight,
    })
    try {
      publisher.resetChain()
      for (const m of [a, b, c]) assert.ok(publisher.send(m!))
      await within(late.held, 10_000, "the stream's ack of the second publish, held by the proxy")
      await within(publisher.settle(), TIMEOUT_MS + 10_000, 'the held publish to time out')
      const givenUp = {
        failed: true,
        timedOut: true,
        stuck: ids[1],
        prefix: { last: ids[0], acked: 1 },
        inFlight: 0,
      }
      assert.deepEqual(observed(), givenUp, 'the run failed at the publish whose ack was held')

      late.release()
      // The server's PONG comes after the released ack on the same socket: the client has read the ack by now.
      await within(gated.flush(), 10_000, 'a round trip after the late ack')
      assert.deepEqual(observed(), givenUp, 'the late ack settled nothing')
      assert.deepEqual(
        (await streamMessages(nc)).map((m) => m.event.event_id),
        ids,
        'the ack was real: the stream stored the publish the run gave up on',
      )

      // The next run republishes from the acked prefix: what the stream holds comes back as duplicates.
      publisher.resetChain(ids[0])
      for (const m of [b, c]) assert.ok(publisher.send(m!))
      await within(publisher.settle(), TIMEOUT_MS + 10_000, 'the republished events to be acked')
      assert.equal(publisher.failed, false)
      assert.deepEqual(
        {
          last: publisher.prefix.last?.event.event_id,
          acked: publisher.prefix.acked,
          dups: publisher.prefix.duplicates,
        },
        { last: ids[2], acked: 2, dups: 2 },
        'both acked as duplicates',
      )
    } finally {
      late.release()
      publisher.close()
      await gated.close().catch(() => {})
      await late.close()
    }
  })
})
