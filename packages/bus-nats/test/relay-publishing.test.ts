import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { subscribe as onChannel, unsubscribe as offChannel } from 'node:diagnostics_channel'
import { setTimeout as sleep } from 'node:timers/promises'
import { EventFactory } from '@eventplane/core'
import { type EventTextRow, PgEventStore, ROLES, loadRelayCheckpoint } from '@eventplane/store-pg'
import { closePool, createTestDatabase, holdForeignXid, holdXid, type TestDatabase } from '@eventplane/store-pg/testing'
import { jetstreamManager } from '@nats-io/jetstream'
import { type Msg, type NatsConnection, type PublishOptions, TimeoutError } from '@nats-io/transport-node'
import { EVENT_HEADERS } from '../src/codec.ts'
import type { RelayOptions } from '../src/relay-options.ts'
import { Relay } from '../src/relay.ts'
import { relayMessage } from '../src/relay-encode.ts'
import { OrderedPublisher } from '../src/relay-publisher.ts'
import { ensureStream } from '../src/stream.ts'
import { STREAM_NAME } from '../src/subjects.ts'
import { RELAY_TRACE, type RelayHorizonTrace } from '../src/relay-trace.ts'
import { startNatsServer, type TestNatsServer } from '../src/testing/index.ts'
import { eventually, streamCount, streamMessages, watchEventIds, within } from './fixtures.ts'

/**
 * Called for each publish on a log subject; `send` passes it to the server and resolves to JetStream's
 * answer, which reaches the relay when the returned promise resolves. Rejecting (or never resolving)
 * means the relay never hears an answer, like a publish lost with its socket.
 */
type PublishInterceptor = (msgId: string, send: () => Promise<Msg>) => Promise<Msg>

/**
 * `nc` with every publish on a log subject routed through `intercept`: the relay publishes with a
 * reply subject of its own (OrderedPublisher), which the proxy swaps for a request of the test's,
 * forwarding the server's answer to the relay's reply subject when `intercept` lets it through.
 * Everything else goes straight through. The relay sees a real connection to a real server; the
 * test decides when an ack arrives, or that a publish is lost on the way.
 */
function interceptPublishes(nc: NatsConnection, intercept: PublishInterceptor): NatsConnection {
  return new Proxy(nc, {
    get(target, prop) {
      if (prop === 'publish') {
        return (subject: string, data?: Uint8Array, opts?: PublishOptions): void => {
          if (!subject.startsWith('eventplane.') || !opts?.reply) {
            target.publish(subject, data, opts)
            return
          }
          const reply = opts.reply
          const send = () => target.request(subject, data, { headers: opts.headers, timeout: 60_000 })
          intercept(opts.headers?.get(EVENT_HEADERS.msgId) ?? '', send).then(
            (answer) => target.publish(reply, answer.data, { headers: answer.headers }),
            () => {}, // lost: the relay's own timeout must notice
          )
        }
      }
      const value = Reflect.get(target, prop, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

describe('relay publishing: wake-up, in-flight window, a publish lost mid-window', () => {
  let db: TestDatabase
  let nats: TestNatsServer
  let nc: NatsConnection
  let intents: PgEventStore
  const f = EventFactory.forTenant('acme', { causedBy: 'user:test' })

  /** One relay at a time, all named `main`: each one continues from the checkpoint of the one before. */
  async function withRelay(options: Partial<RelayOptions>, body: (relay: Relay) => Promise<void>): Promise<void> {
    const relay = new Relay({ sql: db.connect(ROLES.relay, 3), nc, name: 'main', maxBackoffMs: 300, ...options })
    relay.start()
    try {
      await eventually(() => relay.state === 'active', 'the relay to be active')
      await body(relay)
    } finally {
      await within(relay.stop(), 15_000, 'relay stop')
    }
  }

  const appendBatch = async (id: string, n: number) => {
    const s = { tenant: 'acme', category: 'deployment', id }
    const events = Array.from({ length: n }, (_, i) => f.intent(s, 'scaled', { i }))
    return (await intents.append(s, events)).events
  }

  /** The log order by an independent query (not the gap-safe read the relay itself uses). */
  const logIds = async (): Promise<string[]> => {
    const rows = await db.admin<{ id: string }[]>`
      select event_id::text as id from eventplane.events order by tx_id, global_position`
    return rows.map((r) => r.id)
  }

  before(async () => {
    db = await createTestDatabase('ep_relay_pub')
    nats = await startNatsServer({ withAuth: false })
    nc = await nats.connect()
    intents = new PgEventStore(db.connect(ROLES.intentWriter, 2))
  })
  after(async () => {
    await nats?.stop()
    await db?.drop()
  })

  /**
   * When the gap-safe read first sees `eventId`. Until then no relay can publish it: a long
   * transaction of this test's database (another suite's never, since 0018) can hold the horizon back (docs/architecture.md).
   */
  async function visibleAt(eventId: string): Promise<number> {
    for (;;) {
      const [row] = await db.admin<{ visible: boolean }[]>`
        select tx_id < eventplane.log_horizon(pg_current_snapshot()) as visible from eventplane.events where event_id = ${eventId}`
      if (row?.visible) return performance.now()
      await sleep(5) // polling, not ordering
    }
  }

  test('with a 60 s poll interval, every append reaches a subscriber within 5 s, one after another', async (t) => {
    const ROUNDS = 10
    const BOUND_MS = 5000
    const watcher = await nats.connect()
    const received = new Map<string, number>()
    const sub = watcher.subscribe('eventplane.>', {
      callback: (_err, msg) => {
        const id = msg.headers?.get(EVENT_HEADERS.msgId)
        if (id) received.set(id, performance.now())
      },
    })
    await watcher.flush()
    const latencies: string[] = []
    try {
      await withRelay({ pollIntervalMs: 60_000 }, async () => {
        // A relay that only polled would take up to the poll interval; one that re-polls on a
        // shrinking schedule falls behind within a few rounds, as each round waits for the last.
        for (let round = 0; round < ROUNDS; round++) {
          const appendedAt = performance.now()
          const [event] = await appendBatch(`wake-${round}`, 1)
          // A held-back horizon delays any relay; allow twice the hold on top of the bound.
          const held = (await visibleAt(event!.eventId)) - appendedAt
          await eventually(
            () => received.has(event!.eventId),
            `round ${round} to reach the subscriber`,
            BOUND_MS + 2 * held,
          )
          latencies.push(
            `${(received.get(event!.eventId)! - appendedAt).toFixed(0)}${held > 50 ? ` (held ${held.toFixed(0)})` : ''}`,
          )
        }
      })
    } finally {
      sub.unsubscribe()
      await watcher.close()
    }
    t.diagnostic(`latencies (ms): ${latencies.join(' ')}`)
    assert.equal(latencies.length, ROUNDS)
  })

  /** Runs `fn` while a transaction of another (empty) database holds an xid and the bus is watched; cleans up after. */
  async function withForeignXid(
    fn: (otherXid: string, bus: Awaited<ReturnType<typeof watchEventIds>>) => Promise<void>,
  ) {
    const other = await holdForeignXid('ep_relay_other')
    const watcher = await nats.connect()
    try {
      await fn(other.xid, await watchEventIds(watcher))
    } finally {
      await watcher.close()
      await other.drop()
    }
  }

  test('with appends arriving all the time, the relay still passes an open transaction of another database', async () => {
    // Every wake-up is a notification, never a timed re-read: the exact horizon must come by time alone.
    await withForeignXid(async (otherXid, bus) => {
      await withRelay({ pollIntervalMs: 60_000 }, async () => {
        const [first] = await appendBatch('horizon-busy-0', 1)
        assert.ok(BigInt(otherXid) < first!.txId)
        const deadline = performance.now() + 30_000
        let appends = 1
        while (!bus.ids.has(first!.eventId)) {
          assert.ok(performance.now() < deadline, `the first event was not published in 30 s (${appends} appends)`)
          await appendBatch(`horizon-busy-${appends++}`, 1)
        }
      })
    })
  })

  test('a backlog read with the exact horizon goes on with it to the end: every page of the drain passes a foreign transaction', async () => {
    await withForeignXid(async (otherXid, bus) => {
      // Appended before the relay starts: no notification comes, only the first drain reads them.
      const events = await appendBatch('horizon-backlog', 12)
      assert.ok(BigInt(otherXid) < events[0]!.txId)
      await withRelay({ pollIntervalMs: 60_000, horizonLookupMs: 60_000, batchSize: 5 }, async () => {
        await eventually(() => events.every((e) => bus.ids.has(e.eventId)), 'all three pages published', 30_000)
      })
    })
  })

  test('the relay asks for the exact horizon at most once per horizonLookupMs, not on every drain', async () => {
    const trace = { drains: 0, exact: 0 }
    const onHorizon = (m: unknown) => {
      trace.drains++
      if ((m as RelayHorizonTrace).exact) trace.exact++
    }
    onChannel(RELAY_TRACE.horizon.name, onHorizon)
    try {
      const LOOKUP_MS = 60_000
      const startedAt = performance.now()
      await withRelay({ pollIntervalMs: 60_000, horizonLookupMs: LOOKUP_MS }, async () => {
        // Each append wakes a drain; whether the events are visible yet does not matter.
        for (let i = 0; i < 6; i++) {
          await appendBatch(`horizon-gate-${i}`, 1)
          await eventually(() => trace.drains > i + 1, `a drain after append ${i}`, 30_000)
        }
      })
      // The gate's looks, plus the stop's last drain (withRelay stops the relay), which always asks for it.
      const allowed = 2 + Math.floor((performance.now() - startedAt) / LOOKUP_MS)
      assert.ok(trace.drains > allowed, `${trace.drains} drains`)
      assert.ok(trace.exact >= 1 && trace.exact <= allowed, `${trace.exact} of ${trace.drains} drains asked for it`)
    } finally {
      offChannel(RELAY_TRACE.horizon.name, onHorizon)
    }
  })

  test("an open transaction of another database never holds the relay back; this database's does until it ends", async () => {
    await withForeignXid(async (otherXid, bus) => {
      await withRelay({ pollIntervalMs: 60_000 }, async () => {
        // Appended after the other database took its xid, which stays open throughout.
        const [passed] = await appendBatch('horizon-other', 1)
        assert.ok(BigInt(otherXid) < passed!.txId)
        await eventually(() => bus.ids.has(passed!.eventId), 'the event to pass the other database', 15_000)

        const mine = await holdXid(db.admin)
        let late: Awaited<ReturnType<typeof appendBatch>>
        try {
          late = await appendBatch('horizon-mine', 2)
        } finally {
          await mine.release()
        }
        // Woken only by its poll or an append: the release appends nothing, so append once more.
        const [after] = await appendBatch('horizon-after', 1)
        await eventually(() => bus.ids.has(after!.eventId), 'everything after the release', 15_000)
        const order = [late[0]!.eventId, late[1]!.eventId, after!.eventId]
        assert.deepEqual(
          bus.arrived.filter((id) => order.includes(id)),
          order,
        )
      })
    })
  })

  test('the relay never has more than maxInFlight publishes un-acked, and fills that window', async () => {
    const MAX_IN_FLIGHT = 8
    let inFlight = 0
    let observedMax = 0
    let releaseAcks!: () => void
    const acksHeld = new Promise<void>((resolve) => (releaseAcks = resolve))
    const gated = interceptPublishes(nc, async (_id, send) => {
      inFlight++
      observedMax = Math.max(observedMax, inFlight)
      try {
        const ack = await send()
        await acksHeld // the server acked; the relay hears of it only when the test says so
        return ack
      } finally {
        inFlight--
      }
    })
    const before = await streamCount(await jetstreamManager(nc))
    await withRelay({ nc: gated, maxInFlight: MAX_IN_FLIGHT, batchSize: 100 }, async () => {
      const events = await appendBatch('window', 40)
      try {
        await eventually(() => inFlight >= MAX_IN_FLIGHT, 'the relay to fill its window', 60_000)
        assert.equal(observedMax, MAX_IN_FLIGHT, 'with every ack held, the relay stops at maxInFlight publishes')
      } finally {
        releaseAcks()
      }
      const jsm = await jetstreamManager(nc)
      await eventually(
        async () => (await streamCount(jsm)) === before + events.length,
        'the batch in the stream',
        60_000,
      )
    })
    assert.equal(observedMax, MAX_IN_FLIGHT, 'never more than maxInFlight un-acked, and the window was filled')
  })

  test('the window spans read batches, and the checkpoint stops before an un-acked event while later ones are acked', async () => {
    const BATCH = 5
    const events = await appendBatch('span', 40)
    const held = events[2]!
    let releaseHeld!: () => void
    const heldAck = new Promise<void>((resolve) => (releaseHeld = resolve))
    let inFlight = 0
    let observedMax = 0
    let othersAcked = 0
    const gated = interceptPublishes(nc, async (id, send) => {
      inFlight++
      observedMax = Math.max(observedMax, inFlight)
      try {
        const ack = await send()
        if (id === held.eventId)
          await heldAck // the server has it; the relay hears so only when the test says
        else if (events.some((e) => e.eventId === id)) othersAcked++
        return ack
      } finally {
        inFlight--
      }
    })
    await withRelay({ nc: gated, maxInFlight: 64, batchSize: BATCH }, async (relay) => {
      try {
        await eventually(() => othersAcked === events.length - 1, 'every other event acked', 60_000)
        assert.ok(observedMax > BATCH, `publishes of several read batches in flight at once (saw ${observedMax})`)
        // The relay counted the acked prefix (the two events before the held one) and stored it.
        await eventually(() => relay.checkpoint?.position === events[1]!.position, 'the checkpoint at event 2', 60_000)
        const stored = await loadRelayCheckpoint(db.admin, 'main')
        assert.equal(stored.position, events[1]!.position, 'the stored checkpoint stops before the un-acked event')
      } finally {
        releaseHeld()
      }
      await eventually(
        () => relay.checkpoint?.position === events.at(-1)!.position,
        'the checkpoint at the end',
        60_000,
      )
    })
    const ids = (await streamMessages(nc)).map((m) => m.event.event_id)
    assert.deepEqual(ids, await logIds(), 'the stream holds the log once, in the log order')
  })

  test('a publish lost mid-window is never overtaken by the ones after it: the stream order is the log order', async () => {
    const before = await logIds()
    const events = await appendBatch('lossy', 20)
    const victim = events[2]!.eventId
    let lost = false
    let successorSettled!: () => void
    const afterVictim = new Promise<void>((resolve) => (successorSettled = resolve))
    const lossy = interceptPublishes(nc, async (id, send) => {
      if (id === victim && !lost) {
        // Never reaches the server, like a publish written to a socket that then died; the client
        // learns of it by its timeout, here only once a later publish of the window was answered.
        lost = true
        await afterVictim
        throw new TimeoutError()
      }
      try {
        return await send()
      } finally {
        if (lost) successorSettled()
      }
    })
    await withRelay({ nc: lossy, maxInFlight: 8, publishTimeoutMs: 2000 }, async () => {
      const jsm = await jetstreamManager(nc)
      await eventually(
        async () => (await streamCount(jsm)) >= before.length + events.length,
        'the batch in the stream',
        60_000,
      )
    })
    assert.ok(lost, 'the third publish of the window was lost')
    const ids = (await streamMessages(nc)).map((m) => m.event.event_id)
    assert.deepEqual(ids, await logIds(), 'the stream holds the log once, in the log order')
  })

  test('each publish times out on its own deadline: one sent a second after another outlives the first deadline', async () => {
    // OrderedPublisher itself (what the relay sends through): a relay's drain never leaves a second between
    // two sends of one window, and only sends of one window share a timer.
    const TIMEOUT = 3000
    await appendBatch('deadline', 2)
    const relaySql = db.connect(ROLES.relay, 1)
    let rows: EventTextRow[] = []
    for await (const page of new PgEventStore(relaySql).readAllText({ batchSize: 1000 })) rows = [...rows, ...page]
    await closePool(relaySql)
    const [a, b] = rows.slice(-2).map(relayMessage)
    let answerA!: () => void
    const aAnswered = new Promise<void>((resolve) => (answerA = resolve))
    const gated = interceptPublishes(nc, async (id, send) => {
      if (id === a!.event.event_id) {
        const ack = await send()
        await aAnswered // answered once B is sent: A leaves the window, B is pending alone
        return ack
      }
      const sentAt = performance.now()
      answerA()
      const ack = await send()
      // B is answered 500 ms before its own deadline, after A's: the timer armed for A fires while B is
      // pending (a process fires its timers in the order of their due times).
      await sleep(Math.max(0, sentAt + TIMEOUT - 500 - performance.now()))
      return ack
    })
    await ensureStream(await jetstreamManager(nc))
    const publisher = new OrderedPublisher(gated, { maxInFlight: 8, timeoutMs: TIMEOUT, stream: STREAM_NAME })
    try {
      publisher.send(a!)
      await sleep(1000) // pacing: B's deadline a second after A's
      publisher.send(b!)
      await within(publisher.settle(), 20_000, 'both publishes settle')
      assert.equal(publisher.failure, undefined, 'no publish failed: B was answered within its own deadline')
      assert.deepEqual(publisher.prefix, { last: b, acked: 2, duplicates: 0 })
    } finally {
      publisher.close()
    }
  })
})
