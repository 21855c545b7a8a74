import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { ensureStream } from '@eventplane/bus-nats'
import { type BusEnv, type RequestGate, createBusEnv, startRequestGate } from '@eventplane/bus-nats/testing'
import { jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import { ControllerRunner } from '../src/controller/runner.ts'
import { controllerLiveSource, projectionLiveSource } from '../src/jetstream-source.ts'
import type { LiveSource } from '../src/live-source.ts'
import { ProjectionRunner } from '../src/projection/runner.ts'
import { PROJECTOR_ROLE } from '../src/roles.ts'
import { streamCounter } from './fixtures.ts'

/** `source` whose `prepare()` says whether it has settled (resolved or failed). */
function watched(source: LiveSource): { live: LiveSource; settled(): boolean } {
  let settled = false
  return {
    live: {
      ...source,
      prepare: () => source.prepare().finally(() => (settled = true)),
    },
    settled: () => settled,
  }
}

/**
 * A runner stopped while its live source's `prepare()` waits on a stalled server (a proxy holds the reply to
 * every `$JS.API.CONSUMER.` request): `stop()` gives the check up and resolves while it is still in flight,
 * as the relay's stop does its requests (RelayStop.bounded). Before, `stop()` waited for it to time out (5 s),
 * so a SIGTERM during `evtctl run`'s start ended only then.
 */
describe('runners stopped while their consumer check is held', () => {
  let env: BusEnv
  let gate: RequestGate
  let nc: NatsConnection

  before(async () => {
    env = await createBusEnv('ep_stop_during_prepare')
    const operator = await env.server.connect('operator')
    await ensureStream(await jetstreamManager(operator))
    await operator.close()
    gate = await startRequestGate(env.server.port, '$JS.API.CONSUMER.')
    nc = await env.server.connect('controller', { servers: gate.url })
  })
  after(async () => {
    await nc?.close()
    await gate?.close()
    await env?.cleanup()
  })

  test("a controller runner's stop resolves while its consumer check is still in flight", async () => {
    const controller = { name: 'held', categories: ['deployment'], async reconcile() {} }
    const { live, settled } = watched(controllerLiveSource(nc, controller))
    const runner = new ControllerRunner({ controller, store: env.facts, live })
    runner.start().catch(() => {})
    assert.equal(await gate.held, '$JS.API.CONSUMER.INFO.EVENTPLANE.ctl_held')
    await runner.stop()
    assert.equal(settled(), false, 'stop() waited for the held consumer check to end')
    assert.ok(gate.holding)
    await runner.closed
  })

  test("a projection runner's stop resolves while its consumer check is still in flight", async () => {
    const { live, settled } = watched(projectionLiveSource(nc, streamCounter, { consumer: 'held_proj' }))
    const runner = new ProjectionRunner({ projection: streamCounter, sql: env.db.connect(PROJECTOR_ROLE, 2), live })
    runner.start().catch(() => {})
    // The controller's test held the first request; this one is held as every later one.
    while (!gate.requests.includes('$JS.API.CONSUMER.INFO.EVENTPLANE.held_proj'))
      await new Promise((resolve) => setImmediate(resolve))
    await runner.stop()
    assert.equal(settled(), false, 'stop() waited for the held consumer check to end')
    await runner.closed
  })
})
