import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { STREAM_NAME } from '../src/subjects.ts'
import type { NatsConnection } from '@nats-io/transport-node'
import type { Relay } from '../src/relay.ts'
import { ensureConsumer, subscribe } from '../src/subscription.ts'
import { liveIterable } from '../src/live-iterable.ts'
import { tail } from '../src/tail.ts'
import { type BusEnv, appendIntents, createBusEnv, eventually, pgLog, streamCount, within } from './fixtures.ts'
import { nextDelivery, startActiveRelay } from './support/subscriptions.ts'

describe('subscriptions', () => {
  let env: BusEnv
  let relay: Relay
  let acme: NatsConnection

  before(async () => {
    env = await createBusEnv('ep_sub')
    relay = await startActiveRelay(env, 'sub')
    acme = await env.server.connect('acme')
  })
  after(async () => {
    await within(relay?.stop() ?? Promise.resolve(), 10_000, 'relay stop').catch(() => {})
    await env?.cleanup()
  })

  test('a tenant subscription receives its events in order, acks them, and gets an un-acked one redelivered', async () => {
    // Tenant consumers are the operator's to make (tenant add made acme_ctl); this one gets a 1 s ack wait.
    const operator = await jetstreamManager(await env.natsAs('operator'))
    await operator.consumers.delete(STREAM_NAME, 'acme_ctl')
    await ensureConsumer(operator, { name: 'acme_ctl', filter: { tenant: 'acme' }, ackWaitMs: 1000 })
    await appendIntents(env.intents, 'globex', 3, 3, 'other')
    const appended = await appendIntents(env.intents, 'acme', 3, 3, 'mine')
    const sub = await subscribe(jetstream(acme, { timeout: 1000 }), { consumer: 'acme_ctl', batch: 10 })
    const it = sub[Symbol.asyncIterator]()
    try {
      const first = await nextDelivery(it)
      assert.equal(first.event.event_id, appended[0]!.event_id, "only the tenant's events, in log order")
      assert.equal(first.deliveryCount, 1)
      assert.equal(first.redelivered, false)
      await first.ack()

      const second = await nextDelivery(it)
      assert.equal(second.event.event_id, appended[1]!.event_id)
      // second is not acked: it must come back after the 1 s ack wait.
      const third = await nextDelivery(it)
      assert.equal(third.event.event_id, appended[2]!.event_id)
      await third.ack()

      const again = await nextDelivery(it)
      assert.equal(again.event.event_id, appended[1]!.event_id, 'the un-acked event is redelivered')
      assert.equal(again.redelivered, true)
      assert.equal(again.deliveryCount, 2)
      assert.equal(again.seq, second.seq)
      await again.ack()
    } finally {
      await within(sub.stop(), 5000, 'subscription stop')
    }
    await within(sub.closed, 5000, 'subscription closed')
  })

  test("a delivery's ack resolves once JetStream has it, and fails with a typed error when the consumer is gone", async () => {
    const operator = await jetstreamManager(await env.natsAs('operator'))
    await operator.consumers.delete(STREAM_NAME, 'acme_ctl')
    await ensureConsumer(operator, { name: 'acme_ctl', filter: { tenant: 'acme' } })
    await appendIntents(env.intents, 'acme', 2, 2, 'acked')
    // On the tenant's own connection: the confirmations come back under its inbox prefix, which is all it may receive.
    const sub = await subscribe(jetstream(acme, { timeout: 1000 }), { consumer: 'acme_ctl', batch: 10 })
    const it = sub[Symbol.asyncIterator]()
    try {
      const first = await nextDelivery(it)
      const second = await nextDelivery(it)
      await first.ack()
      const info = await operator.consumers.info(STREAM_NAME, 'acme_ctl')
      assert.ok(info.ack_floor.stream_seq >= first.seq, 'the server holds the ack once ack() resolved')
      await operator.consumers.delete(STREAM_NAME, 'acme_ctl')
      // Across the tenant's account import nobody answers at all (no "no responders" status): the first send
      // times out (1 s here), then the consumer's info says it is gone, and the ack fails without sending again.
      await assert.rejects(
        within(second.ack(), 10_000, 'the ack of a deleted consumer'),
        (e: { code?: string; details?: Record<string, unknown> }) =>
          e.code === 'bus.unavailable' && e.details?.attempts === 1 && e.details?.consumer === 'acme_ctl',
      )
    } finally {
      await within(sub.stop(), 5000, 'subscription stop')
      await ensureConsumer(operator, { name: 'acme_ctl', filter: { tenant: 'acme' } })
    }
  })

  test('settling a delivery is final: a nak or term after its ack sends nothing', async () => {
    const operatorNc = await env.natsAs('operator')
    const operator = await jetstreamManager(operatorNc)
    await ensureConsumer(operator, { name: 'settle_probe', filter: { tenant: 'acme' } })
    // What reaches the consumer's ack subjects, seen from the log's side.
    const spy = await env.natsAs('operator')
    const seen: string[] = []
    spy.subscribe(`$JS.ACK.${STREAM_NAME}.settle_probe.>`, {
      callback: (_, m) => {
        seen.push(m.string())
      },
    })
    await spy.flush()
    await appendIntents(env.intents, 'acme', 1, 1, 'settled')
    const sub = await subscribe(jetstream(operatorNc), { consumer: 'settle_probe', batch: 10 })
    const it = sub[Symbol.asyncIterator]()
    try {
      const d = await nextDelivery(it)
      await d.ack()
      d.nak()
      d.term()
      d.working?.()
      await operatorNc.flush()
      await spy.flush()
      assert.deepEqual(seen, ['+ACK'])
    } finally {
      await within(sub.stop(), 5000, 'subscription stop')
      await operator.consumers.delete(STREAM_NAME, 'settle_probe')
    }
  })

  test('a tenant cannot create consumers at all; an existing consumer keeps its filter', async () => {
    const tenant = await jetstreamManager(acme, { checkAPI: false })
    await assert.rejects(ensureConsumer(tenant, { name: 'acme_extra', filter: { tenant: 'acme' } }), {
      code: 'bus.forbidden',
    })
    const jsm = await jetstreamManager(await env.natsAs('operator'))
    await assert.rejects(ensureConsumer(jsm, { name: 'acme_tail', filter: { tenant: 'globex' } }), {
      code: 'bus.bad_request',
    })
    const info = await ensureConsumer(jsm, { name: 'acme_ctl', filter: { tenant: 'acme' } })
    assert.equal(info.config.filter_subject, 'eventplane.*.acme.>')
    await assert.rejects(ensureConsumer(jsm, { name: 'bad.name', filter: { tenant: 'acme' } }), {
      code: 'core.invalid_name',
    })
  })

  test('tail yields live events of the tenant as they are published', async () => {
    // A tail has no history: the events earlier tests appended must be out before it starts (the settle test
    // does not wait for its own event), or one of them is the first thing this tail sees.
    const operator = await jetstreamManager(await env.natsAs('operator'))
    const appended = (await pgLog(env.relayStore)).length
    await eventually(async () => (await streamCount(operator)) === appended, 'the relay to publish the earlier events')
    const live = await tail(acme, { tenant: 'acme' })
    const it = live[Symbol.asyncIterator]()
    try {
      const [event] = await appendIntents(env.intents, 'acme', 1, 1, 'tailed')
      const r = await within(it.next(), 15_000, 'a tailed event')
      assert.equal(r.done, false)
      assert.equal(r.value!.event_id, event!.event_id)
      assert.equal(r.value!.correlation_id, event!.correlation_id)
    } finally {
      await live.stop()
    }
    await within(live.closed, 5000, 'tail closed')
    // Stopped, it no longer takes the tenant's messages: the server was told (an event published after the stop
    // is in the stream, and the connection's flush that follows it brings no message).
    const received = acme.stats().inMsgs
    await appendIntents(env.intents, 'acme', 1, 1, 'untailed')
    await eventually(async () => (await streamCount(operator)) === appended + 2, 'the relay to publish it')
    await acme.flush()
    assert.equal(acme.stats().inMsgs, received, 'no message for the stopped tail')
  })
})

/** A source whose reads wait until the test hands each item over. */
function handedSource(): { source: AsyncIterable<number>; give(n: number): void } {
  const waiting: ((r: IteratorResult<number>) => void)[] = []
  return {
    source: { [Symbol.asyncIterator]: () => ({ next: () => new Promise((resolve) => waiting.push(resolve)) }) },
    give: (n) => waiting.shift()?.({ done: false, value: n }),
  }
}

test('liveIterable: an item that arrives after stop() is not handed out; a feed made with an aborted signal gives nothing', async () => {
  const fed = handedSource()
  let halted = 0
  const live = liveIterable(fed.source, { map: (n: number) => n, halt: () => void halted++ })
  const it = live[Symbol.asyncIterator]()
  const first = it.next()
  fed.give(1)
  assert.deepEqual(await first, { done: false, value: 1 })
  const pending = it.next() // parked in the source's read
  await live.stop()
  fed.give(2) // what the server sent before it heard of the stop
  assert.deepEqual(await pending, { done: true, value: undefined }, 'not handed out: un-acked, it is redelivered')
  assert.equal(halted, 1)
  await within(live.closed, 1000, 'closed after stop')

  const stopped = new AbortController()
  stopped.abort()
  const never = handedSource()
  let haltedToo = 0
  const late = liveIterable(never.source, {
    map: (n: number) => n,
    halt: () => void haltedToo++,
    signal: stopped.signal,
  })
  assert.equal(haltedToo, 1, 'the source is stopped at once')
  const next = late[Symbol.asyncIterator]().next()
  never.give(3)
  assert.deepEqual(await next, { done: true, value: undefined })
  await within(late.closed, 1000, 'closed at once')
})
