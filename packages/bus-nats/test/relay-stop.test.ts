import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventFactory } from '@eventplane/core'
import { type AppendedEvent, PgEventStore, ROLES } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection, Subscription } from '@nats-io/transport-node'
import { EVENT_HEADERS } from '../src/codec.ts'
import { Relay } from '../src/relay.ts'
import { STREAM_NAME } from '../src/subjects.ts'
import { startNatsServer, type TestNatsServer } from '../src/testing/index.ts'
import { eventually } from './fixtures.ts'

// What a relay publishes when it is stopped. The appends below send no NOTIFY and the relay polls once a minute,
// so after its first drain it would not read the log again by itself: whatever reaches the stream after these
// appends was published by stop().
describe('relay stop: the last drain', () => {
  let db: TestDatabase
  let nats: TestNatsServer
  let nc: NatsConnection
  let watcher: NatsConnection
  let sub: Subscription
  let quiet: PgEventStore
  const received = new Set<string>()
  const f = EventFactory.forTenant('acme', { causedBy: 'user:test' })

  const appendQuietly = async (id: string): Promise<AppendedEvent[]> => {
    const s = { tenant: 'acme', category: 'deployment', id }
    return (await quiet.append(s, [f.intent(s, 'scaled', { n: 1 }), f.intent(s, 'scaled', { n: 2 })])).events
  }
  const streamMessages = async () => (await (await jetstreamManager(nc)).streams.info(STREAM_NAME)).state.messages
  // Batches of one event: the last drain goes on past the batch in flight.
  const activeRelay = async (name: string, stopDrainMs?: number) => {
    const relay = new Relay({
      sql: db.connect(ROLES.relay, 3),
      nc,
      name,
      pollIntervalMs: 60_000,
      stopDrainMs,
      batchSize: 1,
    })
    relay.start()
    await eventually(() => relay.state === 'active', `relay ${name} to be active`)
    return relay
  }

  before(async () => {
    db = await createTestDatabase('ep_relay_stop')
    nats = await startNatsServer({ withAuth: false })
    nc = await nats.connect()
    watcher = await nats.connect()
    sub = watcher.subscribe('eventplane.>', {
      callback: (_err, msg) => {
        const id = msg.headers?.get(EVENT_HEADERS.msgId)
        if (id) received.add(id)
      },
    })
    await watcher.flush()
    quiet = new PgEventStore(db.connect(ROLES.intentWriter, 2), { notifyAppends: false })
  })
  after(async () => {
    sub?.unsubscribe()
    await nats?.stop()
    await db?.drop()
  })

  test('stop() publishes what was committed before it, then lets go', async () => {
    const relay = await activeRelay('last-drain')
    const events = await appendQuietly('before-stop')
    await relay.stop()
    assert.equal(relay.stats.published, 2, 'the relay published both events while stopping')
    assert.equal(await streamMessages(), 2, 'the stream holds them once stop() resolved')
    await eventually(() => events.every((e) => received.has(e.eventId)), 'both events on the bus', 5000)
  })

  test('with stopDrainMs 0 it stops at once; the next relay publishes what is left, each event once', async () => {
    const relay = await activeRelay('no-last-drain', 0)
    const before = await streamMessages()
    const events = await appendQuietly('left-for-the-next')
    await relay.stop()
    assert.equal(relay.stats.published, 0, 'nothing published while stopping')
    assert.equal(await streamMessages(), before, 'the stream did not change')
    const next = await activeRelay('no-last-drain')
    try {
      await eventually(async () => (await streamMessages()) === before + 2, 'the next relay to publish both', 5000)
      await eventually(() => events.every((e) => received.has(e.eventId)), 'both events on the bus', 5000)
    } finally {
      await next.stop()
    }
  })
})
