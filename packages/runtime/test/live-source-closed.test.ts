import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import type { NatsConnection } from '@nats-io/transport-node'
import { ControllerRunner } from '../src/controller/runner.ts'
import { controllerLiveSource, projectionLiveSource } from '../src/jetstream-source.ts'
import { ProjectionRunner } from '../src/projection/runner.ts'
import { streamCounter } from './fixtures.ts'
import { type LiveHarness, startHarness } from './harness.ts'
import { within } from './helpers.ts'

/** How a runner's `closed` settled. */
async function settled(closed: Promise<void>, what: string): Promise<unknown> {
  return within(
    closed.then(
      () => 'resolved',
      (e: unknown) => e,
    ),
    20_000,
    `${what} to end on its own (it went on reopening its closed live source)`,
  )
}

/**
 * A runner whose live source's NATS connection is closed for good (the server closed it, e.g. for a revoked
 * user, or it was closed under the runner) ends, rejecting `closed` with `bus.unavailable`, instead of
 * reopening (or catching up from PostgreSQL) forever while it looks alive: its owner says why (evtctl:
 * tests/faults/service-revoked.test.ts).
 */
describe('runners whose live source is closed for good', () => {
  let h: LiveHarness
  const stops: (() => Promise<unknown>)[] = []
  /** A connection of the runner's own, for the test to close. */
  const own = async (): Promise<NatsConnection> => {
    const nc = await h.nats.connect()
    stops.push(() => nc.close())
    return nc
  }

  before(async () => {
    h = await startHarness('ep_live_closed')
  })
  after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {})
    await h?.stop()
  })

  test('a live projection runner rejects closed with bus.unavailable once its connection is closed', async () => {
    const nc = await own()
    const runner = new ProjectionRunner({
      projection: streamCounter,
      sql: h.projector,
      live: projectionLiveSource(nc, streamCounter, { consumer: 'closed_proj' }),
      retryDelayMs: 20,
    })
    stops.push(() => runner.stop())
    await runner.start()
    await nc.close()
    const e = await settled(runner.closed, 'the projection runner')
    assert.ok(isEventplaneError(e, 'bus.unavailable'), `closed with ${String(e)}`)
    assert.equal(e.message, "the live source's NATS connection was closed")
  })

  test('a consuming controller runner rejects closed with bus.unavailable once its connection is closed', async () => {
    const nc = await own()
    const controller = { name: 'closed', categories: ['deployment'], async reconcile() {} }
    const runner = new ControllerRunner({
      controller,
      store: h.facts,
      live: controllerLiveSource(nc, controller),
    })
    stops.push(() => runner.stop())
    await runner.start()
    await nc.close()
    const e = await settled(runner.closed, 'the controller runner')
    assert.ok(isEventplaneError(e, 'bus.unavailable'), `closed with ${String(e)}`)
    assert.equal(e.message, "the live source's NATS connection was closed")
  })
})
