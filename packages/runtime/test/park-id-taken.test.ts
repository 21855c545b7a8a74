/**
 * A controller's fact and park ids are UUIDv5 of its name, the trigger's id and a step (fact-ids.ts): anyone
 * who knows a trigger's id can compute them. An event stored under the park's id before the park (a tenant's
 * intent that got in through a path that does not refuse such ids) makes that id unusable forever: the log is
 * append-only. The runner must not nak such an event for ever, holding a pending ack of the controller's
 * consumer, which is shared by every tenant: at `max_ack_pending` nothing more is delivered to anyone.
 * Real PostgreSQL and nats-server.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventplaneMetrics } from '@eventplane/bus-nats'
import { factId } from '../src/controller/fact-ids.ts'
import { RECONCILE_STARTED } from '../src/controller/reconciles.ts'
import { ControllerRunner, RECONCILE_FAILED } from '../src/controller/runner.ts'
import type { Controller } from '../src/controller/types.ts'
import { controllerLiveSource } from '../src/jetstream-source.ts'
import { Recorder, recordingLogger } from './controller-support.ts'
import { type LiveHarness, startHarness } from './harness.ts'
import { eventually, factoryFor, stream } from './helpers.ts'
import { recordingEach } from './live-wrap.ts'

interface Settled {
  eventId: string
  how: 'ack' | 'nak' | 'term'
}

describe('a park whose id another event holds already', () => {
  let h: LiveHarness
  const stops: (() => Promise<void>)[] = []

  const builder: Controller = {
    name: 'builder',
    categories: ['job'],
    async reconcile(event, ctx) {
      await ctx.emit(ctx.fact('built', { job: event.stream.id }))
    },
  }

  before(async () => {
    h = await startHarness('ep_park_id_taken')
  })
  after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {})
    await h?.stop()
  })

  test('the event is terminated, not nak’ed for ever, and another tenant’s event behind it on the shared consumer is reconciled', async () => {
    const acme = factoryFor('acme')
    const poisoned = acme.intent(stream('acme', 'p1', 'job'), 'run', {})
    // acme occupies the ids of the fact and of the park that its own intent will need, with intents of its own
    // on a category the controller does not watch; then sends the intent.
    for (const [n, step] of ['built', RECONCILE_FAILED].entries()) {
      const claim = acme.intent(
        stream('acme', `claim${n}`, 'note'),
        'noted',
        {},
        {
          eventId: factId('builder', poisoned.event_id, step),
        },
      )
      await h.intents.append(stream('acme', `claim${n}`, 'note'), [claim])
    }
    await h.intents.append(stream('acme', 'p1', 'job'), [poisoned])
    const victim = factoryFor('globex').intent(stream('globex', 'g1', 'job'), 'run', {})
    await h.intents.append(stream('globex', 'g1', 'job'), [victim])

    const settled = new Recorder<Settled>()
    const { logger, lines } = recordingLogger()
    const metrics = new EventplaneMetrics()
    // One pending ack: the smallest consumer a poisoned event could fill (the default is 1,000).
    const live = recordingEach(
      controllerLiveSource(h.nc, builder, { consumer: 'ctl_builder', ackWaitMs: 5000, maxAckPending: 1 }),
      (d, how) => settled.push({ eventId: d.event.event_id, how }),
    )
    const runner = new ControllerRunner({
      controller: builder,
      store: h.facts,
      live,
      retryDelayMs: 20,
      maxRetryDelayMs: 200,
      logger,
      metrics,
    })
    stops.push(() => runner.stop())
    await runner.start()

    const first = await settled.until((s) => s.eventId === poisoned.event_id, 30_000, 'the poisoned intent settled')
    assert.equal(first.how, 'term', 'terminated at once: no retry can ever store its park')
    const line = await lines.until((l) => l.fields.event === 'park.id_taken', 5000, 'the park.id_taken line')
    assert.equal(line.level, 'error')
    assert.equal(line.fields.event_id, poisoned.event_id)
    assert.equal(line.fields.reason_code, 'store.idempotency_conflict')
    assert.ok(!JSON.stringify(line.fields).includes('"data"'), 'ids and codes only')
    const parked = (await metrics.runtime.controllerParked.get()).values.find((v) => v.labels.controller === 'builder')
    assert.equal(parked?.value, 1, 'counted as parked')

    const other = await settled.until((s) => s.eventId === victim.event_id, 30_000, 'globex’s intent settled')
    assert.equal(other.how, 'ack')
    await eventually(
      async () => (await h.facts.readStreamToArray(stream('globex', 'g1', 'job'))).some((e) => e.type === 'built'),
      30_000,
      'globex’s fact',
    )
    assert.deepEqual(
      settled.items.filter((s) => s.eventId === poisoned.event_id).map((s) => s.how),
      ['term'],
      'settled once',
    )
    const stored = await h.facts.readStreamToArray(stream('acme', 'p1', 'job'))
    assert.deepEqual(
      stored.map((e) => e.type),
      ['run'],
      'nothing stored under the taken ids on its stream',
    )
  })

  test('a redelivery whose reconcile record’s id another event holds is parked, not nak’ed for ever', async () => {
    const tasks: Controller = { ...builder, name: 'tasks', categories: ['task'] }
    const acme = factoryFor('acme')
    const trigger = acme.intent(stream('acme', 't1', 'task'), 'run', {})
    const claim = acme.intent(
      stream('acme', 'claim-r', 'note'),
      'noted',
      {},
      {
        eventId: factId('tasks', trigger.event_id, `${RECONCILE_STARTED}/1`),
      },
    )
    await h.intents.append(stream('acme', 'claim-r', 'note'), [claim])
    await h.intents.append(stream('acme', 't1', 'task'), [trigger])

    const settled = new Recorder<Settled>()
    let lost = false
    const live = recordingEach(
      controllerLiveSource(h.nc, tasks, { consumer: 'ctl_tasks', ackWaitMs: 5000, maxAckPending: 1 }),
      (d, how) => settled.push({ eventId: d.event.event_id, how }),
      // The first ack lost: the bus delivers the trigger again, and the runner records a reconcile first.
      () => {
        if (lost) return false
        lost = true
        return true
      },
    )
    const runner = new ControllerRunner({
      controller: tasks,
      store: h.facts,
      live,
      retryDelayMs: 20,
      maxRetryDelayMs: 200,
    })
    stops.push(() => runner.stop())
    await runner.start()

    const settledAgain = await settled.until(
      (s) => s.eventId === trigger.event_id && settled.items.filter((x) => x.eventId === trigger.event_id).length >= 2,
      30_000,
      'the redelivery settled',
    )
    assert.equal(settledAgain.how, 'term', 'the redelivery is parked at once: its record can never be stored')
    const stored = await h.facts.readStreamToArray(stream('acme', 't1', 'task'))
    assert.deepEqual(
      stored.map((e) => [e.type, e.type === RECONCILE_FAILED ? e.data.reason_code : undefined]),
      [
        ['run', undefined],
        ['built', undefined],
        [RECONCILE_FAILED, 'store.idempotency_conflict'],
      ],
    )
  })
})
