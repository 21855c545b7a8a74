import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { EventFactory } from '@eventplane/core'
import { type AppendedEvent, PgEventStore, ROLES, loadRelayCheckpoint } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import type { Logger } from '../src/logger.ts'
import { Relay } from '../src/relay.ts'
import { relayMessage } from '../src/relay-encode.ts'
import { OrderedPublisher } from '../src/relay-publisher.ts'
import { ensureStream } from '../src/stream.ts'
import { STREAM_NAME } from '../src/subjects.ts'
import { RELAY_TRACE } from '../src/relay-trace.ts'
import { startAckGate, startNatsServer, type TestNatsServer } from '../src/testing/index.ts'
import { eventually, streamMessages, within } from './fixtures.ts'

const STOP_DRAIN_MS = 300
const PUBLISH_TIMEOUT_MS = 30_000
/** Acks the gate lets through before it holds every later one (and everything else the server sends). */
const ACKED = 2

/** The relay's warnings, by message (it logs ids, counts and positions, never data). */
class Warnings implements Logger {
  readonly seen: Array<{ msg: string; abandoned?: number }> = []
  debug(): void {}
  info(): void {}
  error(obj: object, msg = ''): void {
    this.warn(obj, msg)
  }
  warn(obj: object, msg = ''): void {
    this.seen.push({ msg, ...(obj as { abandoned?: number }) })
  }
}

// A relay whose acks stop coming: it reaches NATS through startAckGate, which lets ACKED acks of log publishes
// through and then holds everything the server sends, for ever. The server stores every publish; only the
// relay never hears of it. One publish in flight at a time (maxInFlight 1): the relay sends the event after
// the last one acked and then waits for an ack that never comes, exactly there, whatever the timing.
describe('relay stop: the deadline', () => {
  let db: TestDatabase
  let nats: TestNatsServer
  let nc: NatsConnection
  let quiet: PgEventStore
  const f = EventFactory.forTenant('acme', { causedBy: 'user:test' })

  before(async () => {
    db = await createTestDatabase('ep_relay_stop_deadline')
    nats = await startNatsServer({ withAuth: false })
    nc = await nats.connect()
    quiet = new PgEventStore(db.connect(ROLES.intentWriter, 2), { notifyAppends: false })
  })
  after(async () => {
    await nats?.stop()
    await db?.drop()
  })

  test('stop() resolves by stopDrainMs while an ack is held: the publish is abandoned, the checkpoint stays at the acked prefix, and the next relay publishes the rest once', async () => {
    const gate = await startAckGate(nats.port, ACKED)
    const gated = await nats.connect('operator', { servers: gate.url, maxReconnectAttempts: 0 })
    const warnings = new Warnings()
    let drains = 0
    const onDrain = () => drains++
    subscribe(RELAY_TRACE.drain.name, onDrain)
    const relay = new Relay({
      sql: db.connect(ROLES.relay, 3),
      nc: gated,
      name: 'deadline',
      pollIntervalMs: 60_000,
      maxInFlight: 1,
      stopDrainMs: STOP_DRAIN_MS,
      publishTimeoutMs: PUBLISH_TIMEOUT_MS,
      logger: warnings,
    })
    const s = { tenant: 'acme', category: 'deployment', id: 'held' }
    let events: AppendedEvent[]
    try {
      relay.start()
      // After its first drain (an empty log) the relay reads again only in a minute or when stopped: the appends
      // below send no NOTIFY, so the stop's last drain publishes them.
      await eventually(() => relay.state === 'active' && drains > 0, 'the first drain of the relay')
      unsubscribe(RELAY_TRACE.drain.name, onDrain)
      events = (
        await quiet.append(
          s,
          [1, 2, 3, 4].map((n) => f.intent(s, 'scaled', { n })),
        )
      ).events
      warnings.seen.length = 0
      // Without the deadline, stop() waits for the held ack until publishTimeoutMs: it cannot resolve before.
      await within(relay.stop(), PUBLISH_TIMEOUT_MS / 2, 'stop() to resolve before the publish timeout')
      assert.ok(gate.holding, 'the held ack was never let through')
      assert.equal(gate.acked, ACKED)
      assert.equal(gate.published, ACKED + 1, 'the third event was sent, the fourth not (one publish in flight)')
      const acked = events[ACKED - 1]!
      assert.deepEqual(
        await loadRelayCheckpoint(db.admin, 'deadline'),
        { txId: acked.txId, position: acked.position },
        'the checkpoint stays at the last acked event, before the abandoned one',
      )
      assert.equal(relay.stats.published, ACKED, 'the relay counted only what was acked')
      // The stop warns once, naming the abandoned publish: not a failed publish nor a failed last drain.
      assert.deepEqual(
        warnings.seen.map((w) => w.abandoned),
        [1],
        `one warning, the abandon: ${warnings.seen.map((w) => w.msg).join(' | ')}`,
      )
    } finally {
      unsubscribe(RELAY_TRACE.drain.name, onDrain)
      await relay.stop()
      await gate.close()
      await gated.close().catch(() => {})
    }

    // The server stored the abandoned publish; the next relay of that name resumes after the stream's last
    // message and publishes the fourth event: each event once, in order.
    const next = new Relay({ sql: db.connect(ROLES.relay, 3), nc, name: 'deadline', pollIntervalMs: 60_000 })
    next.start()
    try {
      await eventually(async () => (await streamMessages(nc)).length >= events.length, 'the next relay to catch up')
      assert.deepEqual(
        (await streamMessages(nc)).map((m) => m.event.event_id),
        events.map((e) => e.eventId),
        'the stream holds each event once, in log order',
      )
    } finally {
      await within(next.stop(), 15_000, 'the next relay to stop')
    }
  })

  // What the deadline relies on: abandoning is final for the publisher (a run reset after it sends nothing
  // either), so a batch the drain reads after the deadline is never sent and waited for.
  test('an abandoned publisher fails its pending publishes at once and sends nothing more, in a new run neither', async () => {
    await ensureStream(await jetstreamManager(nc))
    const s = { tenant: 'acme', category: 'deployment', id: 'abandoned' }
    await quiet.append(s, [f.intent(s, 'scaled', { n: 1 }), f.intent(s, 'scaled', { n: 2 })])
    let rows: Parameters<typeof relayMessage>[0][] = []
    for await (const page of new PgEventStore(db.connect(ROLES.relay, 1)).readAllText({ batchSize: 1000 }))
      rows = [...rows, ...page]
    const [a, b] = rows.slice(-2).map(relayMessage)
    const gate = await startAckGate(nats.port, 0)
    const gated = await nats.connect('operator', { servers: gate.url, maxReconnectAttempts: 0 })
    const publisher = new OrderedPublisher(gated, {
      maxInFlight: 4,
      timeoutMs: PUBLISH_TIMEOUT_MS,
      stream: STREAM_NAME,
    })
    try {
      publisher.resetChain()
      assert.ok(publisher.send(a!))
      await within(gate.held, 20_000, 'the stream to ack the publish, and the gate to hold that ack')
      const deadline = new Error('the deadline passed')
      publisher.abandon(deadline)
      assert.equal(publisher.inFlight, 0, 'nothing is waited for any more')
      assert.equal(publisher.failure, deadline)
      assert.equal(publisher.prefix.acked, 0, 'the abandoned publish is not in the acked prefix')
      assert.equal(publisher.send(b!), false, 'no publish after it')
      publisher.resetChain()
      assert.equal(publisher.send(b!), false, 'no publish in a new run either')
      assert.ok(publisher.failed)
    } finally {
      publisher.close()
      await gate.close()
      await gated.close().catch(() => {})
    }
  })
})
