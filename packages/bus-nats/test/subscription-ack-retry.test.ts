import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream'
import { tenantPermissions } from '../src/nats-config/permissions.ts'
import type { Relay } from '../src/relay.ts'
import { STREAM_NAME, tenantInboxPrefix } from '../src/subjects.ts'
import { ensureConsumer, subscribe } from '../src/subscription.ts'
import { type BusEnv, appendIntents, createBusEnv, within } from './fixtures.ts'
import { nextDelivery, startActiveRelay } from './support/subscriptions.ts'
import { startAckCut } from './support/ack-cut.ts'
import { captureLogger } from './support/log-entries.ts'

const ACK_WAIT_MS = 2000

// Tenant acme's own connection, as a runner's, through a proxy that cuts it at the first ack: the ack is
// lost on the way (the server never has it), the client reconnects, and only a second send can settle it.
describe('an ack lost with its connection is sent again', () => {
  let env: BusEnv
  let relay: Relay
  let operator: JetStreamManager

  before(async () => {
    env = await createBusEnv('ep_ackretry', ['acme'])
    relay = await startActiveRelay(env, 'ackretry')
    operator = await jetstreamManager(await env.natsAs('operator'))
    await operator.consumers.delete(STREAM_NAME, 'acme_ctl')
    await ensureConsumer(operator, { name: 'acme_ctl', filter: { tenant: 'acme' }, ackWaitMs: ACK_WAIT_MS })
  })
  after(async () => {
    await within(relay?.stop() ?? Promise.resolve(), 10_000, 'relay stop').catch(() => {})
    await env?.cleanup()
  })

  test('an ack whose connection broke before the server had it is confirmed on a retry, and the message is never redelivered', async () => {
    const cut = await startAckCut(env.server.port)
    const acme = await env.server.connect('acme', { servers: cut.url, maxReconnectAttempts: -1, reconnectTimeWait: 50 })
    const logger = captureLogger()
    const [appended] = await appendIntents(env.intents, 'acme', 1, 1, 'lost-ack')
    const sub = await subscribe(jetstream(acme, { timeout: 1000 }), { consumer: 'acme_ctl', batch: 10, logger })
    const it = sub[Symbol.asyncIterator]()
    try {
      const d = await nextDelivery(it)
      assert.equal(d.event.event_id, appended!.event_id)
      const acked = d.ack()
      const dropped = await within(cut.cut, 5000, 'the connection cut at the ack')
      assert.match(dropped, /^\$JS\.ACK\.EVENTPLANE\.acme_ctl\./)
      await within(acked, 15_000, 'the ack, sent again after the reconnect')
      assert.equal(cut.forwardedAcks, 1, 'the same ack, sent once more')

      const info = await operator.consumers.info(STREAM_NAME, 'acme_ctl')
      assert.ok(info.ack_floor.stream_seq >= d.seq, 'the server holds the ack once ack() resolved')
      assert.equal(info.num_ack_pending, 0)
      const retry = logger.entries.find((e) => e.msg === 'ack not confirmed, sending it again')
      assert.ok(retry, 'the retry is logged')
      assert.deepEqual(
        { consumer: retry.fields.consumer, seq: retry.fields.seq, event_id: retry.fields.event_id },
        { consumer: 'acme_ctl', seq: d.seq, event_id: d.event.event_id },
        'by ids',
      )
      assert.equal(retry.fields.code, 'bus.timeout')
      assert.ok(!JSON.stringify(logger.entries).includes('"n":'), 'no event data in the log')

      // Past the ack wait: an ack the server never had would have the message redelivered by now.
      await sleep(ACK_WAIT_MS + 1000)
      const later = await operator.consumers.info(STREAM_NAME, 'acme_ctl')
      assert.equal(later.num_ack_pending, 0)
      assert.equal(later.num_redelivered, 0)
      assert.equal(later.delivered.consumer_seq, info.delivered.consumer_seq, 'nothing delivered again')
    } finally {
      await within(sub.stop(), 5000, 'subscription stop')
      await cut.close()
    }
  })

  test('an ack whose first confirmation the server drops (a subscribe deny on its reply) resolves when the same ack is sent again', async () => {
    const inbox = tenantInboxPrefix('acme')
    const granted = tenantPermissions('acme', ['acme_ctl'])
    // The confirmer's replies are `<inbox>.<id>.<ack number>`: a subscribe deny on `<inbox>.*.0` makes the
    // server drop the answer to the connection's first ack (number 0) on its way to the client, and only that
    // one. nats-server 2.9 applies a deny to deliveries once a wildcard subscription covering it exists
    // (`*.*.0`, allowed for that alone; the deny leaves it nothing to receive): the confirmer's own
    // `<inbox>.<id>.*` does not cover `<inbox>.*.0`. JetStream has the ack; the client never hears it.
    const acme = await env.server.connectAccountUser(
      'acme',
      { inboxPrefix: inbox },
      {
        ...granted,
        subscribe: { allow: [...(granted.subscribe?.allow ?? []), '*.*.0'], deny: [`${inbox}.*.0`] },
      },
    )
    const leaked: string[] = []
    acme.subscribe('*.*.0', {
      callback: (_, m) => {
        leaked.push(m.subject)
      },
    })
    await acme.flush()
    const logger = captureLogger()
    const [appended] = await appendIntents(env.intents, 'acme', 1, 1, 'lost-reply')
    const sub = await subscribe(jetstream(acme, { timeout: 1000 }), { consumer: 'acme_ctl', batch: 10, logger })
    const it = sub[Symbol.asyncIterator]()
    try {
      const d = await nextDelivery(it)
      assert.equal(d.event.event_id, appended!.event_id)
      await within(d.ack(), 15_000, 'the ack, sent again after its lost confirmation')
      const retries = logger.entries.filter((e) => e.msg === 'ack not confirmed, sending it again')
      assert.deepEqual(
        retries.map((e) => [e.fields.attempt, e.fields.code, e.fields.seq]),
        [[1, 'bus.timeout', d.seq]],
        'one retry, after the first send timed out',
      )
      const info = await operator.consumers.info(STREAM_NAME, 'acme_ctl')
      assert.ok(info.ack_floor.stream_seq >= d.seq)
      assert.equal(info.num_ack_pending, 0)
      assert.deepEqual(leaked, [], 'the dropped confirmation reached no subscription')
      await sleep(ACK_WAIT_MS + 1000)
      const later = await operator.consumers.info(STREAM_NAME, 'acme_ctl')
      assert.equal(later.num_ack_pending, 0)
      assert.equal(later.delivered.consumer_seq, info.delivered.consumer_seq, 'nothing delivered again')
    } finally {
      await within(sub.stop(), 5000, 'subscription stop')
    }
  })
})
