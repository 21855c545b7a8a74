import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
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
})
