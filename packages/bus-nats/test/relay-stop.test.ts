import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import { EventFactory } from '@eventplane/core'
import { type AppendedEvent, PgEventStore, ROLES } from '@eventplane/store-pg'
import { useForeignXid } from '@eventplane/store-pg/testing'
import { jetstreamManager } from '@nats-io/jetstream'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { Relay } from '../src/relay.ts'
import { RELAY_TRACE } from '../src/relay-trace.ts'
import { eventually, streamCount, useWatchedBus } from './fixtures.ts'

// What a relay publishes when it is stopped. The appends below send no NOTIFY, the relay polls once a minute,
// and each relay has finished its first drain before they commit: after it, the relay would not read the log
// again by itself, so whatever reaches the stream after these appends was published by stop(). A transaction of
// another database stays open throughout, older than every event: only the exact horizon passes it.
describe('relay stop: the last drain', () => {
  const bus = useWatchedBus('ep_relay_stop')
  // Held before the tests, older than every event they append; dropped after them.
  useForeignXid('ep_relay_stop_other')
  let quiet: PgEventStore
  const f = EventFactory.forTenant('acme', { causedBy: 'user:test' })

  const appendQuietly = async (id: string): Promise<AppendedEvent[]> => {
    const s = { tenant: 'acme', category: 'deployment', id }
    return (await quiet.append(s, [f.intent(s, 'scaled', { n: 1 }), f.intent(s, 'scaled', { n: 2 })])).events
  }
  const streamMessages = async () => streamCount(await jetstreamManager(bus.nc))
  // Batches of one event: the last drain goes on past the batch in flight. The exact horizon only on the first
  // drain and, when it asks for it, the last one.
  const activeRelay = async (name: string, stopDrainMs?: number) => {
    let drains = 0
    const onDrain = () => drains++
    subscribe(RELAY_TRACE.drain.name, onDrain)
    try {
      const relay = new Relay({
        sql: bus.db.connect(ROLES.relay, 3),
        nc: bus.nc,
        name,
        pollIntervalMs: 60_000,
        stopDrainMs,
        batchSize: 1,
      })
      relay.start()
      await eventually(() => relay.state === 'active' && drains > 0, `relay ${name}'s first drain`)
      return relay
    } finally {
      unsubscribe(RELAY_TRACE.drain.name, onDrain)
    }
  }

  before(async () => {
    quiet = new PgEventStore(bus.db.connect(ROLES.intentWriter, 2), { notifyAppends: false })
  })

  test('stop() publishes what was committed before it, then lets go', async () => {
    const relay = await activeRelay('last-drain')
    const events = await appendQuietly('before-stop')
    await relay.stop()
    assert.equal(relay.stats.published, 2, 'the relay published both events while stopping')
    assert.equal(await streamMessages(), 2, 'the stream holds them once stop() resolved')
    await eventually(() => events.every((e) => bus.received.has(e.eventId)), 'both events on the bus', 5000)
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
      await eventually(() => events.every((e) => bus.received.has(e.eventId)), 'both events on the bus', 5000)
    } finally {
      await next.stop()
    }
  })
})
