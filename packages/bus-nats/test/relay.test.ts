import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { subscribe as onChannel, unsubscribe as offChannel } from 'node:diagnostics_channel'
import { setTimeout as sleep } from 'node:timers/promises'
import { EventFactory, isEventplaneError } from '@eventplane/core'
import { PgEventStore, ROLES, loadRelayCheckpoint } from '@eventplane/store-pg'
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import { EVENT_HEADERS } from '../src/codec.ts'
import { Relay } from '../src/relay.ts'
import { relayName, resolveRelayOptions } from '../src/relay-options.ts'
import { RELAY_TRACE } from '../src/relay-trace.ts'
import {
  type BusEnv,
  appendIntents,
  createBusEnv,
  eventually,
  pgLog,
  streamCount,
  streamMessages,
  within,
} from './fixtures.ts'

describe('relay', () => {
  let env: BusEnv
  let relay: Relay
  let operator: NatsConnection
  let jsm: JetStreamManager

  before(async () => {
    env = await createBusEnv('ep_relay')
    operator = await env.natsAs('operator')
    jsm = await jetstreamManager(operator)
    relay = new Relay({
      sql: env.db.connect(ROLES.relay, 4),
      nc: await env.natsAs('relay'),
      name: 'main',
      pollIntervalMs: 200,
    })
    relay.start()
  })
  after(async () => {
    await within(relay?.stop() ?? Promise.resolve(), 15_000, 'relay stop').catch(() => {})
    await env?.cleanup()
  })

  test('appended events appear on their log subjects in log order with event_id, correlation and causation intact', async () => {
    const user = EventFactory.forTenant('acme', { causedBy: 'user:alice' })
    const d1 = { tenant: 'acme', category: 'deployment', id: 'd1' }
    const root = user.intent(d1, 'deploy_requested', { replicas: 3 })
    await env.intents.append(d1, [root])
    const controller = EventFactory.fromEvent(root, { causedBy: 'controller:deployer' })
    const started = controller.fact(d1, 'deploy_started', { step: 1 })
    await env.facts.append(d1, [started])
    const s1 = { tenant: 'globex', category: 'service', id: 'svc:a' }
    const other = EventFactory.forTenant('globex', { causedBy: 'user:bob' }).intent(s1, 'created', { name: 'a' })
    await env.intents.append(s1, [other])

    await eventually(async () => (await streamCount(jsm)) === 3, 'three messages in the stream')
    const messages = await streamMessages(operator)
    const log = await pgLog(env.relayStore)
    assert.deepEqual(
      messages.map((m) => m.event),
      log,
      'the stream holds the recorded events, byte for byte, in the gap-safe order',
    )
    assert.deepEqual(
      messages.map((m) => m.subject),
      [
        'eventplane.intent.acme.deployment.d1',
        'eventplane.fact.acme.deployment.d1',
        'eventplane.intent.globex.service.svc:a',
      ],
    )
    for (const m of messages) {
      assert.equal(m.headers?.get(EVENT_HEADERS.msgId), m.event.event_id)
      assert.equal(m.headers?.get(EVENT_HEADERS.txId), m.event.tx_id.toString())
      assert.equal(m.headers?.get(EVENT_HEADERS.position), m.event.global_position.toString())
      assert.equal(m.headers?.get(EVENT_HEADERS.tenant), m.event.tenant_id)
    }
    const [r, f] = messages.map((m) => m.event)
    assert.equal(r!.event_id, root.event_id)
    assert.equal(r!.correlation_id, root.event_id)
    assert.equal(r!.causation_id, null)
    assert.equal(r!.caused_by, 'user:alice')
    assert.equal(f!.event_id, started.event_id)
    assert.equal(f!.correlation_id, root.event_id, 'the child keeps the chain')
    assert.equal(f!.causation_id, root.event_id, 'the child points at its cause')
    assert.equal(f!.caused_by, 'controller:deployer')
  })

  test('a transaction that inserted first and committed last is published, and nothing after it is skipped', async () => {
    const before = await streamCount(jsm)
    const f = EventFactory.forTenant('acme', { causedBy: 'user:test' })
    const slowConn = await env.db.connect(ROLES.intentWriter, 1).reserve()
    try {
      await slowConn.unsafe('begin')
      const slowStream = { tenant: 'acme', category: 'deployment', id: 'slow' }
      const slow = f.intent(slowStream, 'created', {})
      await new PgEventStore(slowConn as never).append(slowStream, [slow])
      const fast = await appendIntents(env.intents, 'acme', 5, 5, 'fast')
      await sleep(600)
      assert.equal(
        await streamCount(jsm),
        before,
        'nothing committed after the open transaction is published while it is open',
      )
      await slowConn.unsafe('commit')
      await eventually(
        async () => (await streamCount(jsm)) === before + 6,
        'the slow and the fast events in the stream',
      )
      const ids = (await streamMessages(operator)).map((m) => m.event.event_id)
      assert.ok(
        ids.indexOf(slow.event_id) < ids.indexOf(fast[0]!.event_id),
        'the slow transaction first: it has the older tx id',
      )
      assert.deepEqual(
        ids,
        (await pgLog(env.relayStore)).map((e) => e.event_id),
      )
    } finally {
      await slowConn.unsafe('rollback').catch(() => {})
      slowConn.release()
    }
  })

  test('a relay stopped gracefully stores its checkpoint at the last acked event, and its successor publishes only what is new', async () => {
    const appended = await appendIntents(env.intents, 'globex', 120, 40, 'graceful')
    await eventually(
      async () => (await streamMessages(operator)).some((m) => m.event.event_id === appended.at(-1)!.event_id),
      'the last event published',
    )
    await within(relay.stop(), 15_000, 'graceful stop')
    assert.equal(relay.state, 'stopped')
    const last = (await pgLog(env.relayStore)).at(-1)!
    assert.deepEqual(await loadRelayCheckpoint(env.relayStore.sql, 'main'), {
      txId: last.tx_id,
      position: last.global_position,
    })

    relay = new Relay({
      sql: env.db.connect(ROLES.relay, 4),
      nc: await env.natsAs('relay'),
      name: 'main',
      pollIntervalMs: 200,
    })
    relay.start()
    await eventually(() => relay.state === 'active', 'the successor to become active')
    const more = await appendIntents(env.intents, 'globex', 10, 10, 'after')
    await eventually(
      async () => (await pgLog(env.relayStore)).some((e) => e.event_id === more.at(-1)!.event_id),
      'the new events to be visible',
    )
    const total = (await pgLog(env.relayStore)).length
    await eventually(async () => (await streamCount(jsm)) === total, 'the new events in the stream')
    assert.equal(relay.stats.published, more.length, 'the successor republished nothing')
    assert.equal(relay.stats.duplicates, 0)
  })

  test('drain after drain, each event is published once (the next read starts at the acked prefix); a relay of another name, with no checkpoint of its own, resumes after the last message of the stream and republishes nothing', async () => {
    const before = relay.stats
    let drains = 0
    const onDrain = (): void => {
      drains++
    }
    onChannel(RELAY_TRACE.drain.name, onDrain)
    let appended = 0
    try {
      for (let round = 0; round < 3; round++) {
        const batch = await appendIntents(env.intents, 'globex', 5, 5, `round${round}`)
        appended += batch.length
        const total = (await pgLog(env.relayStore)).length
        await eventually(async () => (await streamCount(jsm)) === total, `round ${round} in the stream`)
        // Two more whole drains after the round is in the stream: each reads again from where the relay is.
        const seen = drains
        await eventually(() => drains >= seen + 2, `two drains after round ${round}`)
      }
    } finally {
      offChannel(RELAY_TRACE.drain.name, onDrain)
    }
    assert.equal(relay.stats.published - before.published, appended, 'every event published once, none again')
    assert.equal(relay.stats.duplicates - before.duplicates, 0, 'no publish was a copy the stream already held')

    // Another relay name has no checkpoint: the stream's last message, an event of this log, says where to go on.
    await within(relay.stop(), 15_000, 'stop main')
    const total = (await pgLog(env.relayStore)).length
    const again = new Relay({ sql: env.db.connect(ROLES.relay, 4), nc: await env.natsAs('relay'), name: 'again' })
    again.start()
    try {
      await eventually(() => again.state === 'active', 'the other relay to become active')
      assert.deepEqual(again.stats, { published: 0, duplicates: 0 }, 'nothing republished')
      const last = (await pgLog(env.relayStore)).at(-1)!
      assert.deepEqual(again.checkpoint, { txId: last.tx_id, position: last.global_position })
      await appendIntents(env.intents, 'acme', 3, 3, 'again')
      await eventually(async () => (await streamCount(jsm)) === total + 3, 'the new events in the stream')
      assert.deepEqual(again.stats, { published: 3, duplicates: 0 }, 'each new event published once')
      const ids = (await streamMessages(operator)).map((m) => m.event.event_id)
      assert.deepEqual(
        ids,
        (await pgLog(env.relayStore)).map((e) => e.event_id),
        'the stream holds the log once, in the log order',
      )
    } finally {
      await within(again.stop(), 15_000, 'stop again')
    }
  })
})

test('relay options: the documented defaults; the wake-up poll follows pollIntervalMs, horizonLookupMs 0 is allowed, a name is 1-64 characters', () => {
  const options = { sql: undefined as never, nc: undefined as never }
  // The defaults RelayOptions documents (and `evtctl relay --help` repeats).
  assert.deepEqual(resolveRelayOptions(options), {
    batchSize: 500,
    maxInFlight: 256,
    pollIntervalMs: 1000,
    wakePollMs: 1000,
    lockRetryMs: 1000,
    publishTimeoutMs: 5000,
    apiTimeoutMs: 5000,
    leaseTimeoutMs: 5000,
    maxBackoffMs: 5000,
    horizonLookupMs: 50,
    stopDrainMs: 2000,
    stream: {},
  })
  const resolved = resolveRelayOptions({ ...options, pollIntervalMs: 200 })
  assert.deepEqual([resolved.wakePollMs, resolved.lockRetryMs], [200, 200], 'both follow pollIntervalMs')
  assert.equal(resolveRelayOptions({ ...options, horizonLookupMs: 0 }).horizonLookupMs, 0, '0 looks on every drain')
  assert.throws(() => resolveRelayOptions({ ...options, horizonLookupMs: -1 }), RangeError)
  assert.equal(relayName('a'.repeat(64)), 'a'.repeat(64))
  assert.throws(
    () => relayName('a'.repeat(65)),
    (e: unknown) => isEventplaneError(e, 'core.invalid_name'),
  )
  assert.equal(relayName(undefined), 'default')
})
