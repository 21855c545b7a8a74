import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import type { Relay } from '../src/relay.ts'
import { STREAM_NAME } from '../src/subjects.ts'
import { subscribe } from '../src/subscription.ts'
import { type BusEnv, appendIntents, createBusEnv, eventually, within } from './fixtures.ts'
import { nextDelivery, startActiveRelay } from './support/subscriptions.ts'

const ROUNDS = 20

/** The subjects the server holds subscriptions on for `nc`, from its monitoring endpoint (`/connz`). */
async function serverSubscriptions(env: BusEnv, nc: NatsConnection): Promise<string[]> {
  // The server has every SUB/UNSUB sent so far once a ping round trip came back.
  await nc.flush()
  const cid = nc.info?.client_id
  const res = await fetch(`${env.server.monitorUrl}/connz?cid=${cid}&subs=1`)
  const body = (await res.json()) as { connections: Array<{ cid: number; subscriptions_list?: string[] }> }
  const connection = body.connections.find((c) => c.cid === cid)
  assert.ok(connection, `the server knows connection ${cid}`)
  return [...(connection.subscriptions_list ?? [])].sort()
}

// Tenant acme's own connection, as a runner's: its acks are confirmed under its inbox prefix.
describe('subscriptions of one connection share one ack confirmer', () => {
  let env: BusEnv
  let relay: Relay
  let acme: NatsConnection
  let operator: JetStreamManager
  /** The connection's subscriptions with no subscription running (nats.js's request inbox included). */
  let idle: string[]

  before(async () => {
    env = await createBusEnv('ep_acks', ['acme'], { monitoring: true })
    relay = await startActiveRelay(env, 'acks')
    operator = await jetstreamManager(await env.natsAs('operator'))
    await appendIntents(env.intents, 'acme', 2 * ROUNDS + 10, 10, 'shared')
    await eventually(
      async () => (await operator.streams.info(STREAM_NAME)).state.messages >= 2 * ROUNDS + 10,
      'the relay to publish the events',
    )
    acme = await env.server.connect('acme')
    // One request first, so nats.js's request inbox is there before the baseline is taken.
    await jetstream(acme).consumers.get(STREAM_NAME, 'acme_tail')
    idle = await serverSubscriptions(env, acme)
  })
  after(async () => {
    await within(relay?.stop() ?? Promise.resolve(), 10_000, 'relay stop').catch(() => {})
    await env?.cleanup()
  })

  test(`${ROUNDS} subscribe, ack and stop rounds on one connection leave the server holding no more subscriptions than before`, async () => {
    const js = jetstream(acme, { timeout: 5000 })
    const counts: number[] = []
    for (let round = 0; round < ROUNDS; round++) {
      const sub = await subscribe(js, { consumer: 'acme_tail', batch: 1 })
      const it = sub[Symbol.asyncIterator]()
      try {
        await within((await nextDelivery(it)).ack(), 10_000, `the ack of round ${round}`)
      } finally {
        await within(sub.stop(), 5000, 'subscription stop')
      }
      await within(sub.closed, 5000, 'subscription closed')
      counts.push((await serverSubscriptions(env, acme)).length)
    }
    assert.deepEqual(counts, Array(ROUNDS).fill(idle.length), 'no subscription left behind by any round')
    assert.deepEqual(await serverSubscriptions(env, acme), idle)
  })

  test('two concurrent subscriptions on one connection share one reply subscription, and both acks are confirmed', async () => {
    const js = jetstream(acme, { timeout: 5000 })
    const a = await subscribe(js, { consumer: 'acme_proj', batch: 1 })
    const b = await subscribe(js, { consumer: 'acme_ctl', batch: 1 })
    const ia = a[Symbol.asyncIterator]()
    const ib = b[Symbol.asyncIterator]()
    try {
      const [da, db] = [await nextDelivery(ia), await nextDelivery(ib)]
      const feeds = (await serverSubscriptions(env, acme)).length - idle.length
      await within(Promise.all([da.ack(), db.ack()]), 10_000, 'both acks')
      assert.equal(
        (await serverSubscriptions(env, acme)).length - idle.length,
        feeds + 1,
        'one reply subscription for both subscriptions',
      )
      for (const [name, d] of [['acme_proj', da] as const, ['acme_ctl', db] as const]) {
        const info = await operator.consumers.info(STREAM_NAME, name)
        assert.ok(info.ack_floor.stream_seq >= d.seq, `JetStream holds ${name}'s ack once ack() resolved`)
      }
      // One subscription ends: the other still acks through the shared reply subscription.
      await within(a.stop(), 5000, 'subscription a stop')
      await within(a.closed, 5000, 'subscription a closed')
      const db2 = await nextDelivery(ib)
      await within(db2.ack(), 10_000, 'the ack after the other subscription ended')
      const info = await operator.consumers.info(STREAM_NAME, 'acme_ctl')
      assert.ok(info.ack_floor.stream_seq >= db2.seq, 'confirmed after the other subscription ended')
    } finally {
      await within(Promise.all([a.stop(), b.stop()]), 5000, 'subscriptions stop')
    }
    await within(Promise.all([a.closed, b.closed]), 5000, 'subscriptions closed')
    assert.deepEqual(await serverSubscriptions(env, acme), idle, 'the reply subscription ended with the last one')
  })
})
