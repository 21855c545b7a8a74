import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { EventFactory, InvalidData, type RecordedEvent, Unavailable } from '@eventplane/core'
import { controllerPrincipal } from '../src/controller/context.ts'
import { factId } from '../src/controller/fact-ids.ts'
import { appendPark, storedPark } from '../src/controller/parked.ts'
import { RECONCILES_CATEGORY, beginReconcile } from '../src/controller/reconciles.ts'
import { ControllerRunner, RECONCILE_FAILED } from '../src/controller/runner.ts'
import type { Controller } from '../src/controller/types.ts'
import { controllerLiveSource } from '../src/jetstream-source.ts'
import type { LiveSource } from '../src/live-source.ts'
import { STREAM_NAME } from '@eventplane/bus-nats'
import { jetstreamManager } from '@nats-io/jetstream'
import { Recorder, recordingLogger } from './controller-support.ts'
import { type LiveHarness, startHarness } from './harness.ts'
import { eventually, factoryFor, stream } from './helpers.ts'
import { mapDeliveries, overriding, recordingSettlements } from './live-wrap.ts'

describe('controllers', () => {
  let h: LiveHarness
  const stops: (() => Promise<void>)[] = []

  function startController(
    controller: Controller,
    consumer = `ctl_${controller.name}`,
    extra: Partial<ConstructorParameters<typeof ControllerRunner>[0]> = {},
  ): ControllerRunner {
    const live = controllerLiveSource(h.nc, controller, { consumer, ackWaitMs: 1000 })
    const r = new ControllerRunner({ controller, store: h.facts, live, retryDelayMs: 20, ...extra })
    stops.push(() => r.stop())
    return r
  }
  const readStream = (tenant: string, id: string, category = 'deployment') =>
    h.facts.readStreamToArray(stream(tenant, id, category))
  const types = (events: RecordedEvent[]) => events.map((e) => e.type)

  before(async () => {
    h = await startHarness('ep_ctl')
  })
  after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {})
    await h?.stop()
  })

  test('a controller that crashes after one of its facts reprocesses the intent without duplicates (its last allowed delivery)', async () => {
    let hang = true
    const twoStep: Controller = {
      name: 'twostep',
      categories: ['job'],
      async reconcile(_event, ctx) {
        await ctx.emit(ctx.fact('step_one', { n: 1 }))
        if (hang)
          await new Promise((_, reject) =>
            ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }),
          )
        await ctx.emit(ctx.fact('step_two', { n: 2 }))
      },
    }
    const first = startController(twoStep)
    await first.start()
    const f = factoryFor('acme')
    const s = stream('acme', 'j1', 'job')
    await h.intents.append(s, [f.intent(s, 'run', {})])
    await eventually(
      async () => types(await readStream('acme', 'j1', 'job')).includes('step_one'),
      30_000,
      'first fact appended',
    )
    await first.stop()
    hang = false
    // Its second delivery is the last that maxDeliveries 2 lets through: reconciled, not parked.
    const second = startController(twoStep, undefined, { maxDeliveries: 2 })
    await second.start()
    await eventually(
      async () => types(await readStream('acme', 'j1', 'job')).includes('step_two'),
      30_000,
      'redelivered and finished',
    )
    await sleep(300)
    assert.deepEqual(types(await readStream('acme', 'j1', 'job')), ['run', 'step_one', 'step_two'])
  })

  test('a poison event gets reconcile_failed and is parked; transient errors retry; other streams go on', async () => {
    const attempts = new Map<string, number>()
    const picky: Controller = {
      name: 'picky',
      categories: ['task'],
      async reconcile(event, ctx) {
        const n = (attempts.get(event.event_id) ?? 0) + 1
        attempts.set(event.event_id, n)
        if (event.stream.id === 'bad') throw new InvalidData('cannot handle this task')
        if (event.stream.id === 'flaky' && n < 3) throw new Unavailable('store.unavailable', 'simulated outage')
        await ctx.emit(ctx.fact('done', { attempt: n }))
      },
    }
    const r = startController(picky)
    await r.start()
    const f = factoryFor('acme')
    for (const id of ['bad', 'ok1', 'flaky', 'ok2'])
      await h.intents.append(stream('acme', id, 'task'), [f.intent(stream('acme', id, 'task'), 'run', {})])
    await h.intents.append(stream('acme', 'bad', 'task'), [f.intent(stream('acme', 'bad', 'task'), 'run', {})])
    for (const id of ['ok1', 'flaky', 'ok2']) {
      await eventually(
        async () => types(await readStream('acme', id, 'task')).includes('done'),
        30_000,
        `${id} reconciled`,
      )
    }
    await eventually(
      async () => (await readStream('acme', 'bad', 'task')).filter((e) => e.type === RECONCILE_FAILED).length === 2,
      30_000,
      'both bad intents parked',
    )
    const bad = await readStream('acme', 'bad', 'task')
    const failed = bad.filter((e) => e.type === RECONCILE_FAILED)
    assert.deepEqual(failed[0]!.data, { controller: 'picky', reason_code: 'core.invalid_data', attempts: 1 })
    assert.equal(failed[0]!.kind, 'internal')
    assert.equal(failed[0]!.causation_id, bad[0]!.event_id)
    const flaky = await readStream('acme', 'flaky', 'task')
    assert.deepEqual(flaky.find((e) => e.type === 'done')!.data, { attempt: 3 })
  })

  test('a poison event whose terminate was lost comes back and is acknowledged without a reconcile: one reconcile_failed', async () => {
    let reconciles = 0
    const poison: Controller = {
      name: 'poison',
      categories: ['poison'],
      async reconcile() {
        reconciles++
        throw new InvalidData('cannot handle this')
      },
    }
    const inner = controllerLiveSource(h.nc, poison, { consumer: 'ctl_poison', ackWaitMs: 1000 })
    // The first terminate never reaches NATS: the delivery comes back after its ack wait.
    // The intent's settlements (the reconcile_failed is delivered too, and acknowledged unseen).
    const settled = new Recorder<'ack' | 'nak' | 'term'>()
    let terms = 0
    const live = recordingSettlements(inner, settled, (d) => {
      if (terms++ > 0) d.term()
    })
    const { logger, lines } = recordingLogger()
    const r = new ControllerRunner({ controller: poison, store: h.facts, live, retryDelayMs: 20, logger })
    stops.push(() => r.stop())
    await r.start()
    const s = stream('acme', 'p1', 'poison')
    await h.intents.append(s, [factoryFor('acme').intent(s, 'run', {})])
    await settled.until((_x) => settled.items.length >= 2, 30_000, 'the delivery and its redelivery settled')
    await r.stop()
    assert.deepEqual(settled.items, ['term', 'ack'], 'parked, then acknowledged: its reconcile_failed is stored')
    assert.equal(reconciles, 1, 'not reconciled again')
    assert.equal(lines.items.filter((l) => l.msg === 'event parked').length, 1)
    assert.equal(lines.items.filter((l) => l.fields.event === 'intent.already_parked').length, 1)
    const failed = (await readStream('acme', 'p1', 'poison')).filter((e) => e.type === RECONCILE_FAILED)
    assert.equal(failed.length, 1)
  })

  test('a park that meets another reconcile_failed of the event (parked meanwhile by another worker) keeps it and terminates the delivery, once', async () => {
    let reconciles = 0
    const raced: Controller = {
      name: 'raced',
      categories: ['raced'],
      async reconcile(event, ctx) {
        reconciles++
        // Another worker parks it first, after other attempts: its reconcile_failed is stored before ours.
        const theirs = { controller: 'raced', reason_code: 'runtime.reconcile_failed', attempts: 10 }
        await ctx.emit(
          ctx.factory.internal(event.stream, RECONCILE_FAILED, theirs, { eventId: ctx.id(RECONCILE_FAILED) }),
        )
        throw new InvalidData('cannot handle this')
      },
    }
    // The intent's settlements (the reconcile_failed is delivered too, and acknowledged unseen).
    const settled = new Recorder<'ack' | 'nak' | 'term'>()
    const live = recordingSettlements(
      controllerLiveSource(h.nc, raced, { consumer: 'ctl_raced', ackWaitMs: 1000 }),
      settled,
    )
    const { logger, lines } = recordingLogger()
    const r = new ControllerRunner({ controller: raced, store: h.facts, live, retryDelayMs: 20, logger })
    stops.push(() => r.stop())
    await r.start()
    const s = stream('acme', 'r1', 'raced')
    await h.intents.append(s, [factoryFor('acme').intent(s, 'run', {})])
    assert.equal(await settled.until(() => true, 30_000, 'the delivery settled'), 'term')
    await r.stop()
    assert.deepEqual(settled.items, ['term'])
    assert.equal(reconciles, 1)
    const events = await readStream('acme', 'r1', 'raced')
    assert.deepEqual(
      events.map((e) => [e.type, e.data]),
      [
        ['run', {}],
        [RECONCILE_FAILED, { controller: 'raced', reason_code: 'runtime.reconcile_failed', attempts: 10 }],
      ],
      'the stored reconcile_failed is kept',
    )
    assert.deepEqual(
      lines.items.filter((l) => l.fields.event === 'park.kept_stored').map((l) => l.fields.reason_code),
      ['core.invalid_data'],
    )
    assert.equal(lines.items.filter((l) => l.msg === 'could not park event, will retry').length, 0)
  })

  test("storedPark finds the runtime's own reconcile_failed only: an intent, another principal's event, another stream's, another type or one caused by another event under the park's id is none", async () => {
    const f = factoryFor('acme')
    const s = stream('acme', 'sp', 'stored_park')
    await h.intents.append(
      s,
      [1, 2, 3, 4, 5, 6].map((n) => f.intent(s, 'run', { n })),
    )
    const [byUser, intent, elsewhere, parked, otherCause, otherType] = await readStream('acme', 'sp', 'stored_park')
    const data = { controller: 'judge', reason_code: 'core.invalid_data', attempts: 1 }
    /** An event under the park's id of `trigger`, caused by it; the operator's import could restore any of these. */
    const under = (trigger: RecordedEvent, causedBy: string) =>
      [
        EventFactory.fromEvent(trigger, { causedBy }),
        { eventId: factId('judge', trigger.event_id, RECONCILE_FAILED) },
      ] as const
    const [asUser, userId] = under(byUser!, 'user:test')
    await h.facts.append(s, [asUser.internal(s, RECONCILE_FAILED, data, userId)])
    const [asJudge, intentId] = under(intent!, controllerPrincipal('judge'))
    await h.intents.append(s, [asJudge.intent(s, RECONCILE_FAILED, data, intentId)])
    const other = stream('acme', 'sp_other', 'stored_park')
    const [fromElsewhere, elsewhereId] = under(elsewhere!, controllerPrincipal('judge'))
    await h.facts.append(other, [fromElsewhere.internal(other, RECONCILE_FAILED, data, elsewhereId)])
    // The judge's own record in every other respect, but caused by another event of the stream.
    const [ofAnother] = under(byUser!, controllerPrincipal('judge'))
    const otherCauseId = { eventId: factId('judge', otherCause!.event_id, RECONCILE_FAILED) }
    await h.facts.append(s, [ofAnother.internal(s, RECONCILE_FAILED, data, otherCauseId)])
    // Another type under the park's id (mutation audit 2026-12-02, mutrand2: the type check went unseen).
    const [asJudgeOther, otherTypeId] = under(otherType!, controllerPrincipal('judge'))
    await h.facts.append(s, [asJudgeOther.internal(s, 'reconcile_noted', data, otherTypeId)])
    assert.equal(await appendPark(h.facts, 'judge', parked!, 'core.invalid_data', 1), 'appended')
    for (const trigger of [byUser, intent, elsewhere, otherCause, otherType])
      assert.equal(await storedPark(h.facts, 'judge', trigger!), undefined, `${trigger!.data.n}: not a park`)
    assert.deepEqual((await storedPark(h.facts, 'judge', parked!))?.data, data)
  })

  test('a stream whose first event is held waits in order while other streams are reconciled', async () => {
    const started: string[] = []
    const finished: string[] = []
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    const ordered: Controller = {
      name: 'ordered',
      categories: ['queue'],
      async reconcile(event, ctx) {
        const tag = `${event.stream.id}:${event.stream_version}`
        started.push(tag)
        if (tag === 'a:1') await held
        await ctx.emit(ctx.fact('handled', { version: event.stream_version }))
        finished.push(tag)
      },
    }
    // A long ack wait: the held delivery must not come back while the test looks.
    const live = controllerLiveSource(h.nc, ordered, { ackWaitMs: 60_000 })
    const r = new ControllerRunner({ controller: ordered, store: h.facts, live })
    stops.push(() => r.stop())
    await r.start()
    const f = factoryFor('acme')
    const queue = (id: string) => stream('acme', id, 'queue')
    // Stream a first: its later events reach the runner before any event of b or c does.
    await h.intents.append(
      queue('a'),
      [1, 2, 3].map((n) => f.intent(queue('a'), 'run', { n })),
    )
    await h.intents.append(
      queue('b'),
      [1, 2].map((n) => f.intent(queue('b'), 'run', { n })),
    )
    await h.intents.append(queue('c'), [f.intent(queue('c'), 'run', { n: 1 })])
    try {
      await eventually(() => ['b:1', 'b:2', 'c:1'].every((t) => finished.includes(t)), 60_000, 'b and c reconciled')
      assert.deepEqual(
        started.filter((t) => t.startsWith('a:')),
        ['a:1'],
        'while a:1 is held, the later events of its stream have not started',
      )
    } finally {
      release()
    }
    await eventually(() => finished.includes('a:3'), 60_000, 'stream a reconciled')
    assert.deepEqual(
      finished.filter((t) => t.startsWith('a:')),
      ['a:1', 'a:2', 'a:3'],
    )
    assert.deepEqual(
      finished.filter((t) => t.startsWith('b:')),
      ['b:1', 'b:2'],
    )
    const facts = (await readStream('acme', 'a', 'queue')).filter((e) => e.type === 'handled')
    assert.deepEqual(
      facts.map((e) => e.data.version),
      [1, 2, 3],
      'the facts are in the log in the stream order',
    )
  })

  test('an intent redelivered while its reconcile still runs (its ack wait passed, no heartbeat) is reconciled once', async () => {
    const calls = new Map<string, number>()
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    const slow: Controller = {
      name: 'slow',
      categories: ['slowjob'],
      async reconcile(event, ctx) {
        calls.set(event.event_id, (calls.get(event.event_id) ?? 0) + 1)
        if (event.data.hold === true) await held
        await ctx.emit(ctx.fact('slow_done', { n: 1 }))
      },
    }
    // The runner's own source, watched: which deliveries it gets, and when an ack of it is confirmed.
    const inner = controllerLiveSource(h.nc, slow, { consumer: 'ctl_slow', ackWaitMs: 1000 })
    const counts: number[] = []
    const acked: number[] = []
    const live = mapDeliveries(inner, (d) => {
      counts.push(d.deliveryCount)
      return overriding(d, {
        ack: async () => {
          await d.ack()
          acked.push(d.deliveryCount)
        },
      })
    })
    // No heartbeat within the test: the 1 s ack wait passes while the reconcile is held, and JetStream redelivers.
    const r = new ControllerRunner({ controller: slow, store: h.facts, live, retryDelayMs: 20, heartbeatMs: 600_000 })
    stops.push(() => r.stop())
    await r.start()
    const f = factoryFor('acme')
    const s = stream('acme', 's1', 'slowjob')
    const first = f.intent(s, 'run', { hold: true })
    await h.intents.append(s, [first])
    try {
      await eventually(() => counts.some((n) => n > 1), 30_000, 'the held intent redelivered')
    } finally {
      release()
    }
    await eventually(() => acked.length > 0, 30_000, 'the reconciled intent acked')
    // One stream's deliveries are handled in turn: a redelivery queued behind the first would be reconciled
    // before the next intent of the stream, so once that one is reconciled the redelivery has had its turn.
    const next = f.intent(s, 'run', {})
    await h.intents.append(s, [next])
    await eventually(() => calls.has(next.event_id), 30_000, 'the next intent of the stream reconciled')
    assert.equal(calls.get(first.event_id), 1, 'reconciled once, not again for the redelivery')
    await eventually(
      async () => types(await readStream('acme', 's1', 'slowjob')).length === 4,
      30_000,
      "the next intent's fact",
    )
    assert.deepEqual(types(await readStream('acme', 's1', 'slowjob')), ['run', 'slow_done', 'run', 'slow_done'])
  })

  test('an intent of a category the controller does not name is acked and never reconciled, though its consumer filter lets it through', async () => {
    const seen: string[] = []
    const multi: Controller = {
      name: 'multi',
      // Two categories: the consumer's one filter subject cannot name both, so it takes every intent.
      categories: ['alpha', 'beta'],
      async reconcile(event) {
        seen.push(event.stream.category)
      },
    }
    const live = controllerLiveSource(h.nc, multi, { consumer: 'ctl_multi', ackWaitMs: 1000 })
    const r = new ControllerRunner({ controller: multi, store: h.facts, live, retryDelayMs: 20 })
    stops.push(() => r.stop())
    await r.start()
    const f = factoryFor('acme')
    for (const category of ['alpha', 'gamma', 'beta']) {
      const s = stream('acme', 'm1', category)
      await h.intents.append(s, [f.intent(s, 'run', {})])
    }
    // gamma reaches the runner before beta (one consumer, stream order). Three streams: the runner may reconcile
    // them in any order, so what is compared is the set, once every intent was acked.
    await eventually(() => seen.includes('alpha') && seen.includes('beta'), 30_000, 'alpha and beta reconciled')
    await eventually(async () => (await live.pending!()) === 0, 30_000, 'every intent acked, gamma too')
    assert.deepEqual([...seen].sort(), ['alpha', 'beta'], 'gamma is not reconciled')
  })

  test('a controller that names its types reconciles only those: an intent of another type of its category is acked, never reconciled', async () => {
    const seen: string[] = []
    const typed: Controller = {
      name: 'typed',
      categories: ['typed'],
      types: ['wanted'],
      async reconcile(event) {
        seen.push(event.type)
      },
    }
    const live = controllerLiveSource(h.nc, typed, { consumer: 'ctl_typed', ackWaitMs: 1000 })
    const r = new ControllerRunner({ controller: typed, store: h.facts, live, retryDelayMs: 20 })
    stops.push(() => r.stop())
    await r.start()
    const f = factoryFor('acme')
    const s = stream('acme', 't1', 'typed')
    // One stream, in order: the other type reaches the runner before the wanted one does.
    await h.intents.append(s, [f.intent(s, 'unwanted', {}), f.intent(s, 'wanted', {})])
    await eventually(() => seen.includes('wanted'), 30_000, 'the wanted intent reconciled')
    await eventually(async () => (await live.pending!()) === 0, 30_000, 'both intents acked')
    assert.deepEqual(seen, ['wanted'], 'the other type is not reconciled')
  })

  test("the runtime's own reconcile records never trigger a controller, not even one naming their category and kind", async () => {
    const seen: string[] = []
    const nosy: Controller = {
      name: 'nosy',
      kinds: ['intent', 'internal'],
      categories: [RECONCILES_CATEGORY, 'nosy'],
      async reconcile(event) {
        // Before the first await: a reconcile the runner starts is seen before the next delivery is dispatched.
        seen.push(`${event.stream.category}/${event.type}`)
      },
    }
    const r = startController(nosy)
    await r.start()
    const f = factoryFor('acme')
    const other = stream('acme', 'n0', 'elsewhere')
    await h.intents.append(other, [f.intent(other, 'run', {})])
    const [trigger] = await h.facts.readStreamToArray(other)
    // What a runner records before reconciling a redelivery of `trigger` (a reserved stream, kind internal).
    assert.equal(await beginReconcile(h.facts, 'someone', trigger!, 10), 0)
    const marker = stream('acme', 'n1', 'nosy')
    await h.intents.append(marker, [f.intent(marker, 'run', {})])
    // The record reaches the runner before the marker (one consumer, log order).
    await eventually(() => seen.includes('nosy/run'), 30_000, 'the marker reconciled')
    assert.deepEqual(seen, ['nosy/run'])
  })

  test('an ack that fails for good (its consumer deleted mid-reconcile) is logged by ids and attempts, never data', async () => {
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    let reconciling!: () => void
    const started = new Promise<void>((resolve) => (reconciling = resolve))
    const gone: Controller = {
      name: 'ackgone',
      categories: ['ackgone'],
      async reconcile(_event, ctx) {
        reconciling()
        await held
        await ctx.emit(ctx.fact('ackgone_done', { n: 1 }))
      },
    }
    const inner = controllerLiveSource(h.nc, gone, { consumer: 'ctl_ackgone', ackWaitMs: 1000 })
    // The runner reopens its subscription when the consumer goes and would recreate it under the same name,
    // where the old delivery's ack would land: it stays away until the failed ack was logged.
    let prepares = 0
    let reopen!: () => void
    const reopened = new Promise<void>((resolve) => (reopen = resolve))
    const live: LiveSource = {
      prepare: async () => {
        if (prepares++ > 0) await reopened
        await inner.prepare()
      },
      open: (signal) => inner.open(signal),
    }
    const { logger, lines } = recordingLogger()
    const r = new ControllerRunner({ controller: gone, store: h.facts, live, retryDelayMs: 20, logger })
    stops.push(async () => {
      reopen()
      await r.stop()
    })
    await r.start()
    const f = factoryFor('acme')
    const s = stream('acme', 'g1', 'ackgone')
    const intent = f.intent(s, 'run', { secret_marker: 'ackgone-data' })
    await h.intents.append(s, [intent])
    await started
    await (await jetstreamManager(h.nc)).consumers.delete(STREAM_NAME, 'ctl_ackgone')
    release()
    const line = await lines.until((l) => l.msg.startsWith('ack failed'), 15_000, 'the failed ack logged')
    reopen()
    assert.equal(line.level, 'warn')
    assert.deepEqual(line.fields, {
      controller: 'ackgone',
      tenant_id: 'acme',
      event_id: intent.event_id,
      type: 'run',
      stream_version: 1,
      delivery_count: 1,
      code: 'bus.unavailable',
      err: line.fields.err,
      ack_attempts: 1,
    })
    assert.ok(!JSON.stringify(lines.items).includes('ackgone-data'), 'no event data in any log line')
  })
})
