import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { ControllerRunner } from '../src/controller/runner.ts'
import { controllerLiveSource } from '../src/jetstream-source.ts'
import { type LiveHarness, startHarness } from './harness.ts'
import { within } from './helpers.ts'

/**
 * The controller runner's first consumer check is tried again while NATS is unavailable (a runner started before
 * the relay made the stream), but not on a connection closed for good: that failure is `bus.unavailable` too,
 * and waiting cannot reopen it. The start fails instead of retrying forever.
 */
describe('a controller runner started on a NATS connection closed for good', () => {
  let h: LiveHarness

  before(async () => {
    h = await startHarness('ep_ctl_start_closed')
  })
  after(async () => {
    await h?.stop()
  })

  test('start() rejects with the closed connection failure: no retry', async () => {
    const nc = await h.nats.connect()
    await nc.close()
    const controller = { name: 'start_closed', categories: ['deployment'], async reconcile() {} }
    const runner = new ControllerRunner({ controller, store: h.facts, live: controllerLiveSource(nc, controller) })
    try {
      const e = await within(
        runner.start().then(
          () => 'started',
          (e: unknown) => e,
        ),
        20_000,
        'the start to fail (it went on retrying its closed connection)',
      )
      assert.notEqual(e, 'started')
      assert.match(String(e), /closed/)
    } finally {
      await runner.stop().catch(() => {})
    }
  })
})
