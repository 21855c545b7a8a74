import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventplaneError, isEventplaneError } from '@eventplane/core'
import { STREAM_NAME } from '@eventplane/bus-nats'
import { jetstreamManager } from '@nats-io/jetstream'
import { controllerLiveSource, coveringFilter, jetStreamSource, projectionLiveSource } from '../src/jetstream-source.ts'
import { type LiveHarness, startHarness } from './harness.ts'
import { eventually, factoryFor, stream } from './helpers.ts'

describe('JetStream live sources', () => {
  let h: LiveHarness

  before(async () => {
    h = await startHarness('ep_js_source')
    const s = stream('acme', 'web')
    const f = factoryFor('acme')
    await h.intents.append(s, [f.intent(s, 'created', {}), f.intent(s, 'scaled', {}), f.intent(s, 'scaled', {})])
    const jsm = await jetstreamManager(h.nc)
    await eventually(
      async () => (await jsm.streams.info(STREAM_NAME)).state.messages === 3,
      30_000,
      'the relay publishes the three events',
    )
  })
  after(async () => {
    await h.stop()
  })

  test("a projection's new consumer starts after the stream's last message: it catches up from PostgreSQL instead", async () => {
    const live = projectionLiveSource(h.nc, { name: 'test_js_new' })
    await live.prepare()
    assert.equal(await live.pending?.(), 0)
  })

  test("a controller's consumer has no delivery limit, even when a JavaScript caller passes one", async () => {
    const options = { maxDeliver: 3 } as Record<string, unknown>
    const live = controllerLiveSource(h.nc, { name: 'js_unlimited', categories: ['deployment'] }, options)
    await live.prepare()
    const info = await (await jetstreamManager(h.nc)).consumers.info(STREAM_NAME, 'ctl_js_unlimited')
    assert.equal(info.config.max_deliver ?? -1, -1)
    assert.equal(await live.pending?.(), 3, 'from the first event on')
  })

  test('a consumer that does not exist has no lag: pending is bus.unavailable, never 0', async () => {
    const live = jetStreamSource({ nc: h.nc, consumer: 'test_js_missing', filter: {} })
    await assert.rejects(live.pending!(), (e: unknown) => isEventplaneError(e, 'bus.unavailable'))
  })

  test("a consumer's one filter subject keeps every dimension with one value: the tenant, one kind, one category", () => {
    assert.deepEqual(coveringFilter({ tenant: 'acme', kinds: ['fact'], categories: ['a', 'b'] }), {
      tenant: 'acme',
      kind: 'fact',
    })
    assert.deepEqual(coveringFilter({ tenant: 'acme', kinds: ['fact', 'intent'], categories: ['a'] }), {
      tenant: 'acme',
      category: 'a',
    })
  })

  test('its ackRetry reaches the subscription: one attempt, an ack of a deleted consumer fails with its own send', async () => {
    // Mutation audit 2026-12-02, mutrand2: ackRetry not passed on went unseen. With the default (3 attempts)
    // the failed send is followed by a consumer look-up, and the ack fails as "consumer … is gone".
    const live = jetStreamSource({ nc: h.nc, consumer: 'test_js_ack_once', filter: {}, ackRetry: { attempts: 1 } })
    await live.prepare()
    const sub = await live.open(new AbortController().signal)
    try {
      const first = await sub[Symbol.asyncIterator]().next()
      assert.equal(first.done, false)
      await (await jetstreamManager(h.nc)).consumers.delete(STREAM_NAME, 'test_js_ack_once')
      await assert.rejects(
        async () => first.value.ack(),
        (e: unknown) => {
          assert.ok(e instanceof EventplaneError, String(e))
          assert.doesNotMatch(e.message, /^consumer test_js_ack_once is gone/, 'no consumer look-up after the send')
          assert.equal(e.details?.attempts, 1)
          return true
        },
      )
    } finally {
      await sub.stop()
    }
  })
})
