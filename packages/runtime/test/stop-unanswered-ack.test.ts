import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { SERVER_WAIT_MS } from '@eventplane/bus-nats'
import { type StalledProxy, startStalledProxy } from '@eventplane/bus-nats/testing'
import type { NatsConnection } from '@nats-io/transport-node'
import { ControllerRunner } from '../src/controller/runner.ts'
import type { Controller } from '../src/controller/types.ts'
import { controllerLiveSource, projectionLiveSource } from '../src/jetstream-source.ts'
import type { LiveDelivery, LiveSource } from '../src/live-source.ts'
import { ProjectionRunner } from '../src/projection/runner.ts'
import { recordingLogger } from './controller-support.ts'
import { watchedSource } from './live-wrap.ts'
import { streamCounter } from './fixtures.ts'
import { type LiveHarness, startHarness } from './harness.ts'
import { factoryFor, stream, within } from './helpers.ts'

/**
 * `live` whose first delivery's ack stalls the proxy just before it is sent: the server never answers it (nor
 * anything after it). `ackSent` resolves once it was sent.
 */
function stallingAtFirstAck(live: LiveSource, proxy: StalledProxy): { live: LiveSource; ackSent: Promise<void> } {
  let sent!: () => void
  const ackSent = new Promise<void>((resolve) => (sent = resolve))
  let first = true
  const watched = watchedSource(live, (d: LiveDelivery) => {
    if (!first) return
    first = false
    const ack = d.ack.bind(d)
    d.ack = () => {
      proxy.stall()
      const acked = ack()
      sent()
      return acked
    }
  })
  return { live: watched, ackSent }
}

/** How long `stop` takes; within the test's bound, else it fails naming what it waits on. */
async function stopTime(stop: () => Promise<void>): Promise<number> {
  const started = performance.now()
  await within(stop(), SERVER_WAIT_MS + 5_000, 'the stop (it waits on an ack the server never answers)')
  return performance.now() - started
}

/**
 * A runner stopped while an ack is unanswered (the server or the path to it stopped answering) does not wait
 * out the ack's retries (three sends of 5 s and a consumer lookup between each, ~25 s: past the 10 s evtctl
 * gives a SIGTERM): it leaves the ack after `SERVER_WAIT_MS`, the event to be redelivered.
 */
describe('runners stopped while an ack goes unanswered', () => {
  let h: LiveHarness
  const cleanups: (() => Promise<unknown>)[] = []
  const stalledConnection = async (): Promise<{ nc: NatsConnection; proxy: StalledProxy }> => {
    const proxy = await startStalledProxy(h.nats.port)
    const nc = await h.nats.connect(undefined, { servers: proxy.url, maxReconnectAttempts: -1 })
    cleanups.push(
      () => nc.close(),
      () => proxy.close(),
    )
    return { nc, proxy }
  }

  before(async () => {
    h = await startHarness('ep_stop_unanswered_ack')
  })
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {})
    await h?.stop()
  })

  test('a controller runner stops within SERVER_WAIT_MS of its stop, the ack abandoned', async () => {
    const { nc, proxy } = await stalledConnection()
    const controller: Controller = { name: 'unanswered', categories: ['job'], async reconcile() {} }
    const { live, ackSent } = stallingAtFirstAck(controllerLiveSource(nc, controller), proxy)
    const { logger, lines } = recordingLogger()
    const runner = new ControllerRunner({ controller, store: h.facts, live, logger })
    cleanups.push(() => runner.stop())
    await runner.start()
    const f = factoryFor('acme')
    const s = stream('acme', 'j1', 'job')
    await h.intents.append(s, [f.intent(s, 'run', {})])
    await within(ackSent, 30_000, 'the reconciled event to be acked')
    const took = await stopTime(() => runner.stop())
    assert.ok(took >= SERVER_WAIT_MS - 50, `stopped after ${took} ms: before the server had its time`)
    assert.ok(lines.items.some((l) => l.fields.event === 'ack.abandoned'))
  })

  test('a projection runner stops within SERVER_WAIT_MS of its stop, the batch ack abandoned', async () => {
    const { nc, proxy } = await stalledConnection()
    const { live, ackSent } = stallingAtFirstAck(
      projectionLiveSource(nc, streamCounter, { consumer: 'unanswered_proj' }),
      proxy,
    )
    const runner = new ProjectionRunner({ projection: streamCounter, sql: h.projector, live })
    cleanups.push(() => runner.stop())
    await runner.start()
    const f = factoryFor('acme')
    const s = stream('acme', 'p1')
    await h.intents.append(s, [f.intent(s, 'scaled', {})])
    await within(ackSent, 30_000, 'the applied event to be acked')
    const took = await stopTime(() => runner.stop())
    assert.ok(took >= SERVER_WAIT_MS - 50, `stopped after ${took} ms: before the server had its time`)
  })

  test('a projection runner stopped during its live commit, before the ack is sent, leaves that ack after SERVER_WAIT_MS too', async () => {
    const { nc, proxy } = await stalledConnection()
    let stopped: Promise<number> | undefined
    let stopCalled!: () => void
    const stopping = new Promise<void>((resolve) => (stopCalled = resolve))
    const runner: ProjectionRunner = new ProjectionRunner({
      projection: streamCounter,
      sql: h.projector,
      live: projectionLiveSource(nc, streamCounter, { consumer: 'unanswered_commit' }),
      // Inside the live commit, before its batch is acked: the server stops answering and the runner is stopped.
      afterCommit: (info) => {
        if (info.phase !== 'live' || stopped) return
        proxy.stall()
        stopped = stopTime(() => runner.stop())
        stopCalled()
      },
    })
    cleanups.push(() => runner.stop())
    await runner.start()
    const f = factoryFor('acme')
    const s = stream('acme', 'p2')
    await h.intents.append(s, [f.intent(s, 'scaled', {})])
    await within(stopping, 30_000, 'the live commit')
    const took = await stopped!
    assert.ok(took >= SERVER_WAIT_MS - 50, `stopped after ${took} ms: before the server had its time`)
  })
})
