import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { AckPolicy, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream'
import { consumerLag, consumerLags } from '../src/consumer-lag.ts'
import { ensureStream } from '../src/stream.ts'
import { STREAM_NAME } from '../src/subjects.ts'
import { type BusEnv, createBusEnv, eventually } from './fixtures.ts'

/** What `evtctl status` and the controller lag gauge read: a consumer's lag, and the controllers' consumers by name. */
describe('consumer lag from the server’s consumer info', () => {
  let env: BusEnv
  let jsm: JetStreamManager

  before(async () => {
    env = await createBusEnv('ep_consumer_lag')
    const operator = await env.natsAs('operator')
    jsm = await jetstreamManager(operator)
    await ensureStream(jsm)
    const relay = jetstream(await env.natsAs('relay'))
    for (let i = 0; i < 3; i++) await relay.publish(`eventplane.intent.acme.deployment.d${i}`, '{}')
    // Out of name order, and one that is not a controller's.
    for (const name of ['ctl_b', 'acme_tail', 'ctl_a'])
      await jsm.consumers.add(STREAM_NAME, {
        durable_name: name,
        ack_policy: AckPolicy.Explicit,
        filter_subject: 'eventplane.*.acme.>',
      })
    // ctl_b takes one event and does not acknowledge it.
    const taken = await jetstream(operator)
      .consumers.get(STREAM_NAME, 'ctl_b')
      .then((c) => c.next({ expires: 5000 }))
    assert.ok(taken, 'ctl_b got an event')
  })
  after(async () => {
    await env?.cleanup()
  })

  test('a consumer’s lag is what it has not been given plus what it has not acknowledged', async () => {
    const lag = await consumerLag(jsm, 'ctl_b')
    assert.deepEqual(lag, { name: 'ctl_b', pending: 2, ackPending: 1, lag: 3, waitingPulls: 0 })
    assert.equal(await consumerLag(jsm, 'ctl_missing'), undefined, 'no such consumer: undefined, not an error')
  })

  test('consumerLags lists the consumers of a prefix only, by name', async () => {
    const lags = await consumerLags(jsm, 'ctl_')
    assert.deepEqual(
      lags.map((l) => [l.name, l.lag]),
      [
        ['ctl_a', 3],
        ['ctl_b', 3],
      ],
    )
  })

  test('a pull waiting at the server is counted; once the stream is gone no consumer has a lag', async () => {
    // A consumer with nothing to deliver, and a pull waiting on it (what `evtctl status` shows as attached).
    await jsm.consumers.add(STREAM_NAME, {
      durable_name: 'idle',
      ack_policy: AckPolicy.Explicit,
      filter_subject: 'eventplane.*.other.>',
    })
    const pull = jetstream(await env.natsAs('operator'))
      .consumers.get(STREAM_NAME, 'idle')
      .then((c) => c.next({ expires: 30_000 }))
      .catch(() => null) // ended by the stream's deletion below
    await eventually(async () => (await consumerLag(jsm, 'idle'))?.waitingPulls === 1, 'the pull waits', 10_000)
    assert.deepEqual(await consumerLag(jsm, 'idle'), {
      name: 'idle',
      pending: 0,
      ackPending: 0,
      lag: 0,
      waitingPulls: 1,
    })
    await jsm.streams.delete(STREAM_NAME)
    await pull
    assert.equal(await consumerLag(jsm, 'ctl_b'), undefined, 'no stream: undefined, not an error')
    assert.deepEqual(await consumerLags(jsm, 'ctl_'), [], 'no stream: none')
  })
})
