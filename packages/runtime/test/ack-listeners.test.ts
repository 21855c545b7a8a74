/**
 * A controller with many acks in flight at once (each waits on the runner's stop signal, `ackUnlessStopped`)
 * is not "a possible EventTarget memory leak": node warns once more than 10 listeners wait on one AbortSignal,
 * and that warning on an operator's stderr would send them looking for a leak that is not there. The acks are
 * held by the test (a wrapped LiveSource) until every delivery is dispatched.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { ControllerRunner } from '../src/controller/runner.ts'
import type { Controller } from '../src/controller/types.ts'
import { controllerLiveSource } from '../src/jetstream-source.ts'
import { type LiveHarness, startHarness } from './harness.ts'
import { eventually, factoryFor, stream } from './helpers.ts'
import { mapDeliveries, overriding } from './live-wrap.ts'

describe('a controller with many acks in flight', () => {
  let h: LiveHarness
  before(async () => {
    h = await startHarness('ep_ack_listeners')
  })
  after(async () => {
    await h?.stop()
  })

  test('30 acks waiting at once give no MaxListenersExceededWarning, and all are sent', async () => {
    const warnings: string[] = []
    const onWarning = (w: Error): void => {
      warnings.push(`${w.name}: ${w.message}`)
    }
    process.on('warning', onWarning)
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    let waiting = 0
    let acked = 0
    // Two categories: the consumer takes every intent, and one of a third category is acked at once, unreconciled.
    const picky: Controller = { name: 'picky_acks', categories: ['alpha', 'beta'], async reconcile() {} }
    const inner = controllerLiveSource(h.nc, picky, { consumer: 'ctl_picky_acks', ackWaitMs: 30_000 })
    const live = mapDeliveries(inner, (d) =>
      overriding(d, {
        ack: async () => {
          waiting++
          await held
          await d.ack()
          acked++
        },
      }),
    )
    const r = new ControllerRunner({ controller: picky, store: h.facts, live, retryDelayMs: 20 })
    try {
      await r.start()
      const f = factoryFor('acme')
      for (let i = 0; i < 30; i++) {
        const s = stream('acme', `g${i}`, 'gamma')
        await h.intents.append(s, [f.intent(s, 'run', {})])
      }
      await eventually(() => waiting === 30, 30_000, 'all 30 acks waiting at once')
      // A warning is emitted on the next tick after the 11th listener: let it come.
      await new Promise((resolve) => setImmediate(resolve))
      release()
      await eventually(() => acked === 30, 30_000, 'all 30 acks sent')
      await eventually(async () => (await inner.pending!()) === 0, 30_000, 'the consumer has nothing pending')
    } finally {
      release()
      await r.stop()
      process.off('warning', onWarning)
    }
    assert.deepEqual(
      warnings.filter((w) => w.startsWith('MaxListenersExceededWarning')),
      [],
    )
  })
})
