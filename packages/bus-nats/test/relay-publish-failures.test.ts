/**
 * The relay's own JetStream publisher (OrderedPublisher) against a real
 * nats-server, one failure path per test: an ack that carries a JetStream
 * error, no responders (a subject no stream takes), an ack that never comes
 * (the server paused with SIGSTOP), a publish the server's permissions
 * refuse. Each breaks the run, and the stored checkpoint never passes the
 * event that was not acked.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type EventData, EventFactory, isEventplaneError } from '@eventplane/core'
import { PgEventStore, ROLES, loadRelayCheckpoint } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { jetstreamManager } from '@nats-io/jetstream'
import { MsgHdrsImpl, type NatsConnection, type PublishOptions } from '@nats-io/transport-node'
import { errorFields, type Logger } from '../src/logger.ts'
import { EXPECTED_LAST_MSG_ID } from '../src/pub-ack.ts'
import type { RelayOptions } from '../src/relay-options.ts'
import { Relay } from '../src/relay.ts'
import { ensureStream } from '../src/stream.ts'
import { startNatsServer, type TestNatsServer } from '../src/testing/index.ts'
import { type BusEnv, createBusEnv, eventually, streamMessages, within } from './fixtures.ts'

/** A logger that keeps what the relay warns about (codes, ids, positions; the relay logs no data). */
class Warnings implements Logger {
  readonly seen: Array<{ msg: string; code?: string; err?: string; event_id?: string }> = []
  debug(): void {}
  info(): void {}
  error(obj: object, msg = ''): void {
    this.warn(obj, msg)
  }
  warn(obj: object, msg = ''): void {
    this.seen.push({ msg, ...(obj as { code?: string; err?: string; event_id?: string }) })
  }
  /** The codes of the relay's 'publish failed' warnings that name `eventId` (the first event not acked). */
  failed(eventId: string): string[] {
    return this.failures(eventId).map((w) => w.code ?? '')
  }
  /** The relay's 'publish failed' warnings that name `eventId`: code and message. */
  failures(eventId: string): Array<{ code?: string; err?: string }> {
    return this.seen.filter((w) => w.msg === 'publish failed' && w.event_id === eventId)
  }
}

/**
 * `nc`, with the first publish of `eventId` sent by `first` instead (to another subject, other headers) and its
 * later publishes held until `release()`; `diverted()` counts that event's publishes so far.
 */
function divertFirstPublish(
  nc: NatsConnection,
  eventId: string,
  first: (publish: NatsConnection['publish'], subject: string, data: Uint8Array, opts?: PublishOptions) => void,
): { nc: NatsConnection; diverted: () => number; release: () => void } {
  let diverted = 0
  let release!: () => void
  const held = new Promise<void>((resolve) => (release = resolve))
  const diverting = new Proxy(nc, {
    get(target, prop) {
      if (prop === 'publish')
        return (subject: string, data: Uint8Array, opts?: PublishOptions) => {
          if (opts?.headers?.get('Nats-Msg-Id') !== eventId) return target.publish(subject, data, opts)
          if (diverted++ === 0) return first(target.publish.bind(target), subject, data, opts)
          void held.then(() => target.publish(subject, data, opts))
        }
      const value = Reflect.get(target, prop, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  return { nc: diverting, diverted: () => diverted, release }
}

describe('relay publish failures: each breaks the run, and the checkpoint stops before the event not acked', () => {
  let db: TestDatabase
  let nats: TestNatsServer
  let nc: NatsConnection
  let intents: PgEventStore
  const f = EventFactory.forTenant('acme', { causedBy: 'user:test' })
  let names = 0

  before(async () => {
    db = await createTestDatabase('ep_relay_fail')
    nats = await startNatsServer({ withAuth: false })
    nc = await nats.connect('operator', { maxReconnectAttempts: -1, reconnectTimeWait: 100 })
    intents = new PgEventStore(db.connect(ROLES.intentWriter, 2))
  })
  after(async () => {
    await nc?.close()
    await nats?.stop()
    await db?.drop()
  })

  const append = async (id: string, data: EventData[]) => {
    const s = { tenant: 'acme', category: 'deployment', id }
    return (
      await intents.append(
        s,
        data.map((d) => f.intent(s, 'scaled', d)),
      )
    ).events
  }
  const stored = (name: string) => loadRelayCheckpoint(db.admin, name).then((c) => c.position)
  const streamIds = async () => (await streamMessages(nc)).map((m) => m.event.event_id)
  const logIds = async () =>
    (
      await db.admin<
        { id: string }[]
      >`select event_id::text as id from eventplane.events order by tx_id, global_position`
    ).map((r) => r.id)

  async function startRelay(
    options: Partial<RelayOptions>,
  ): Promise<{ relay: Relay; warnings: Warnings; name: string }> {
    const warnings = new Warnings()
    const name = `fail_${++names}`
    const relay = new Relay({
      sql: db.connect(ROLES.relay, 3),
      nc,
      name,
      pollIntervalMs: 200,
      maxBackoffMs: 200,
      logger: warnings,
      ...options,
    })
    relay.start()
    await eventually(() => relay.state === 'active', 'the relay to be active')
    return { relay, warnings, name }
  }

  test('an ack with a JetStream error (message too large for the stream) fails the run at that event', async () => {
    const [small] = await append('toolarge', [{ n: 1 }])
    const { relay, warnings, name } = await startRelay({ stream: { maxMsgSize: 2048 } })
    try {
      await eventually(async () => (await stored(name)) === small!.position, 'the first event published')
      const [big, later] = await append('toolarge', [{ pad: 'x'.repeat(4096) }, { n: 2 }])
      await eventually(() => warnings.failed(big!.eventId).length >= 2, 'the refusal, twice (a retry too)')
      assert.deepEqual(new Set(warnings.failed(big!.eventId)), new Set(['bus.stream_mismatch']))
      assert.ok((await stored(name)) < big!.position, 'the checkpoint stops before the refused event')
      const ids = await streamIds()
      assert.ok(ids.includes(small!.eventId), 'the event before it is in the stream')
      assert.ok(!ids.includes(big!.eventId) && !ids.includes(later!.eventId), 'nothing from the refused one on')
    } finally {
      await within(relay.stop(), 15_000, 'relay stop')
    }
    // A relay whose stream takes the event publishes the rest, once, in the log order.
    const { relay: next } = await startRelay({ name })
    try {
      await eventually(async () => (await streamIds()).length === (await logIds()).length, 'the log in the stream')
    } finally {
      await within(next.stop(), 15_000, 'relay stop')
    }
    await ensureStream(await jetstreamManager(nc)) // back to the default size for the next tests
    assert.deepEqual(await streamIds(), await logIds())
  })

  test('no responders (a subject no stream takes) fails the run at that event with bus.unavailable', async () => {
    const [, victim, later] = await append('nostream', [{ n: 1 }, { n: 2 }, { n: 3 }])
    // The victim's first publish goes to a subject outside every stream; the real server answers it with
    // a no-responders status. Its republish waits until the test has looked at the checkpoint.
    const divert = divertFirstPublish(nc, victim!.eventId, (publish, subject, data, opts) =>
      publish(`nostream.${subject}`, data, opts),
    )
    const { relay, warnings, name } = await startRelay({ nc: divert.nc })
    try {
      await eventually(() => warnings.failed(victim!.eventId).length > 0, 'the publish to fail')
      // readPubAck's no-responders check names it; without the check the empty answer fails too, as not JSON
      // (the same code, so the message is what shows that check read the status).
      const [failure, ...more] = warnings.failures(victim!.eventId)
      assert.equal(more.length, 0)
      assert.equal(failure!.code, 'bus.unavailable')
      assert.match(failure!.err ?? '', /^no stream answers a publish on \S+ \(deleted, or JetStream down\)$/)
      await eventually(() => divert.diverted() >= 2, 'the republish, held')
      assert.ok((await stored(name)) < victim!.position, 'the checkpoint stops before the event nobody took')
      assert.ok(!(await streamIds()).includes(later!.eventId), 'nothing after it was stored')
      divert.release()
      await eventually(async () => (await stored(name)) === later!.position, 'the retry to publish the rest')
    } finally {
      divert.release()
      await within(relay.stop(), 15_000, 'relay stop')
    }
    assert.deepEqual(await streamIds(), await logIds(), 'the stream holds the log once, in order')
  })

  test("an ack from another stream is not the log's: the run fails at that event and the checkpoint stays before it", async () => {
    const [, victim, later] = await append('decoy', [{ n: 1 }, { n: 2 }, { n: 3 }])
    const jsm = await jetstreamManager(nc)
    await jsm.streams.add({ name: 'DECOY', subjects: ['decoy.>'] })
    // The victim's first publish is stored by another stream, which acks it under its own name (without the
    // order expectation, which that stream would refuse: its last message is not the victim's predecessor).
    const divert = divertFirstPublish(nc, victim!.eventId, (publish, subject, data, opts) => {
      const headers = new MsgHdrsImpl()
      for (const [k, v] of (opts!.headers as MsgHdrsImpl).headers)
        if (k !== EXPECTED_LAST_MSG_ID) headers.headers.set(k, v)
      publish(`decoy.${subject}`, data, { ...opts, headers })
    })
    // One publish in flight: the log stream's refusal of the next event (its predecessor missing) cannot come
    // before the other stream's ack and be taken for the run's failure.
    const { relay, warnings, name } = await startRelay({ nc: divert.nc, maxInFlight: 1 })
    try {
      await eventually(() => warnings.failed(victim!.eventId).length > 0, 'the publish to fail')
      assert.deepEqual(warnings.failed(victim!.eventId), ['bus.unavailable'])
      assert.equal((await jsm.streams.info('DECOY')).state.messages, 1, 'the other stream acked it')
      await eventually(() => divert.diverted() >= 2, 'the republish, held')
      assert.ok((await stored(name)) < victim!.position, 'the checkpoint stops before the event the log lacks')
      assert.ok(!(await streamIds()).includes(victim!.eventId), 'the victim is not in the log stream')
      divert.release()
      await eventually(async () => (await stored(name)) === later!.position, 'the retry to publish the rest')
    } finally {
      divert.release()
      await within(relay.stop(), 15_000, 'relay stop')
      await jsm.streams.delete('DECOY')
    }
    assert.deepEqual(await streamIds(), await logIds(), 'the stream holds the log once, in order')
  })

  test('an ack that never comes (nats-server paused) times out, and the relay catches up once it resumes', async () => {
    // Reads the log every 20 ms and checks lease and stream only every minute: while the server is paused,
    // the first thing to notice must be the publish, not a stream-info request.
    const { relay, warnings, name } = await startRelay({
      publishTimeoutMs: 1000,
      pollIntervalMs: 60_000,
      wakePollMs: 20,
    })
    const pid = nats.pid!
    let paused = false
    try {
      const [before] = await append('paused', [{ n: 0 }])
      await eventually(async () => (await stored(name)) === before!.position, 'the first event published')
      process.kill(pid, 'SIGSTOP')
      paused = true
      const events = await append('paused', [{ n: 1 }, { n: 2 }, { n: 3 }])
      await eventually(() => warnings.failed(events[0]!.eventId).length > 0, 'the publish to time out', 20_000)
      assert.equal(warnings.failed(events[0]!.eventId)[0], 'bus.timeout')
      assert.equal(await stored(name), before!.position, 'the checkpoint does not pass an event without its ack')
      process.kill(pid, 'SIGCONT')
      paused = false
      await eventually(async () => (await stored(name)) === events.at(-1)!.position, 'the relay to catch up')
    } finally {
      if (paused) process.kill(pid, 'SIGCONT')
      await within(relay.stop(), 15_000, 'relay stop')
    }
    // The publishes sent while paused reach the server when it resumes; the republish finds them stored.
    assert.deepEqual(await streamIds(), await logIds(), 'the stream holds the log once, in order')
  })

  test('a connection closed while acks are pending fails them at once: the relay stops with bus.unavailable', async () => {
    const own = await nats.connect('operator')
    const { relay, warnings, name } = await startRelay({
      nc: own,
      publishTimeoutMs: 60_000,
      pollIntervalMs: 60_000,
      wakePollMs: 20,
    })
    const pid = nats.pid!
    let paused = false
    try {
      const [before] = await append('closed', [{ n: 0 }])
      await eventually(async () => (await stored(name)) === before!.position, 'the first event published')
      // Paused, the server answers nothing: the next publishes stay pending until the connection closes.
      process.kill(pid, 'SIGSTOP')
      paused = true
      const sent = own.stats().outMsgs
      const [pending] = await append('closed', [{ n: 1 }])
      await eventually(() => own.stats().outMsgs > sent, 'the relay to publish it')
      void own.close()
      const error = await within(
        relay.closed.then(
          () => undefined,
          (e: unknown) => e,
        ),
        20_000,
        'the relay to stop when its connection closes (not after the 60 s ack timeout)',
      )
      assert.ok(
        isEventplaneError(error, 'bus.unavailable'),
        `bus.unavailable, got ${JSON.stringify(errorFields(error))}`,
      )
      assert.deepEqual(warnings.failed(pending!.eventId), ['bus.unavailable'])
      assert.equal(await stored(name), before!.position, 'the checkpoint stays before the event without an ack')
    } finally {
      if (paused) process.kill(pid, 'SIGCONT')
      await within(relay.stop(), 15_000, 'relay stop')
    }
  })
})

describe('relay publish failures: a publish the permissions refuse', () => {
  let env: BusEnv

  before(async () => {
    env = await createBusEnv('ep_relay_refused')
  })
  after(async () => {
    await env?.cleanup()
  })

  test('a relay whose user may not publish log subjects stops with bus.forbidden and stores no checkpoint past it', async () => {
    await ensureStream(await jetstreamManager(await env.natsAs('relay')))
    const s = { tenant: 'acme', category: 'deployment', id: 'refused' }
    await env.intents.append(s, [EventFactory.forTenant('acme', { causedBy: 'user:test' }).intent(s, 'scaled', {})])
    // The controller may read the stream's info and subscribe to its inbox, but not publish on the log.
    const relay = new Relay({
      sql: env.db.connect(ROLES.relay, 2),
      nc: await env.natsAs('controller'),
      name: 'refused',
      publishTimeoutMs: 60_000,
    })
    relay.start()
    try {
      const error = await within(
        relay.closed.then(
          () => undefined,
          (e: unknown) => e,
        ),
        20_000,
        'the relay to stop on the refusal (not after the 60 s ack timeout)',
      )
      assert.ok(isEventplaneError(error, 'bus.forbidden'), `bus.forbidden, got ${JSON.stringify(errorFields(error))}`)
      assert.equal((await loadRelayCheckpoint(env.db.admin, 'refused')).position, 0n, 'no checkpoint stored')
    } finally {
      await within(relay.stop(), 15_000, 'relay stop')
    }
  })
})
