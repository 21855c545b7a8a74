import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { ensureConsumer } from '@eventplane/bus-nats'
import { type RecordedEvent, asSystemEnvelope, isEventplaneError, validateEnvelope } from '@eventplane/core'
import { jetstreamManager } from '@nats-io/jetstream'
import {
  RECONCILES_CATEGORY,
  RECONCILE_STARTED,
  beginReconcile,
  reconcilesStream,
} from '../src/controller/reconciles.ts'
import { ControllerRunner, RECONCILE_FAILED } from '../src/controller/runner.ts'
import { controllerPrincipal } from '../src/controller/context.ts'
import type { Controller } from '../src/controller/types.ts'
import { controllerLiveSource, coveringFilter } from '../src/jetstream-source.ts'
import type { LiveSource } from '../src/live-source.ts'
import { PgOutage, Recorder, holds, recordingLogger } from './controller-support.ts'
import { watchedSource } from './live-wrap.ts'
import { cut, forward, freePort } from './forwarder.ts'
import { type LiveHarness, startHarness } from './harness.ts'
import { eventually, factoryFor, stream, within } from './helpers.ts'

/** Small bounds: two unfinished reconciles park an event. */
const BOUNDS = { maxAttempts: 2, maxDeliveries: 2, retryDelayMs: 5, maxRetryDelayMs: 20 }
const ACK_WAIT_MS = 1000

/**
 * A worker restarted again and again: each is a new runner on the controller's durable consumer (a stopped
 * runner's deliveries come back after the ack wait, to the next one, with a higher delivery count).
 */
describe('controller workers restarted', () => {
  let h: LiveHarness
  let pg: PgOutage
  const stops: (() => Promise<void>)[] = []
  const types = (events: RecordedEvent[]) => events.map((e) => e.type)
  const deliveries = new Recorder<{ worker: string; eventId: string; count: number }>()

  /** A runner of `controller` as worker `worker`, its deliveries recorded; started. */
  async function startWorker(controller: Controller, worker: string, store = h.facts) {
    const { logger, lines } = recordingLogger()
    const live: LiveSource = watchedSource(controllerLiveSource(h.nc, controller, { ackWaitMs: ACK_WAIT_MS }), (d) =>
      deliveries.push({ worker, eventId: d.event.event_id, count: d.deliveryCount }),
    )
    const runner = new ControllerRunner({ controller, store, live, logger, ...BOUNDS })
    stops.push(() => runner.stop())
    await runner.start()
    return { runner, lines }
  }
  const reconciles = async (controller: string, event: { event_id: string; tenant_id: string }) =>
    h.facts.readStreamToArray(reconcilesStream(controller, event as RecordedEvent))

  before(async () => {
    h = await startHarness('ep_ctl_restarts')
    pg = await PgOutage.start(h)
  })
  after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {})
    await pg?.stop()
    await h?.stop()
  })

  test('restarts during a PostgreSQL outage count nothing: an intent redelivered past maxDeliveries is reconciled once it is back, not parked', async () => {
    const patient: Controller = {
      name: 'patient',
      categories: ['restart'],
      async reconcile(event, ctx) {
        await ctx.emit(ctx.fact('done', { version: event.stream_version }))
      },
    }
    const f = factoryFor('acme')
    const s = stream('acme', 'r1', 'restart')
    let id: string | undefined
    let last: Awaited<ReturnType<typeof startWorker>> | undefined
    // PostgreSQL is unreachable for the workers. Each one gets the intent, holds it (waiting for
    // PostgreSQL) and is stopped; the next gets it again, until one holds a delivery the bus has handed
    // out more than maxDeliveries times: the bus's count would park it.
    for (let n = 1; ; n++) {
      const worker = `w${n}`
      const started = await startWorker(patient, worker, pg.store())
      if (id === undefined) id = (await h.intents.append(s, [f.intent(s, 'run', {})])).events[0]!.eventId
      const eventId = id
      const d = await deliveries.until(
        (x) => x.worker === worker && x.eventId === eventId,
        30_000,
        `${worker} given it`,
      )
      await started.lines.until(holds(eventId), 30_000, `${worker} holding it`)
      if (d.count > BOUNDS.maxDeliveries) {
        last = started
        break
      }
      await started.runner.stop()
    }
    assert.ok(last)
    await pg.restore()
    await eventually(
      async () => types(await h.facts.readStreamToArray(s)).some((t) => t === 'done' || t === RECONCILE_FAILED),
      30_000,
      'the intent reconciled (or parked) once PostgreSQL is back',
    )
    assert.deepEqual(types(await h.facts.readStreamToArray(s)), ['run', 'done'], 'reconciled, not parked')
    assert.equal(last.lines.items.filter((l) => l.msg === 'event parked').length, 0)
    const recorded = await reconciles('patient', { event_id: id!, tenant_id: 'acme' })
    assert.deepEqual(
      recorded.map((e) => [e.kind, e.type, e.data]),
      [['internal', RECONCILE_STARTED, { controller: 'patient', attempt: 1 }]],
      'one reconcile recorded: the one begun after the outage',
    )
    assert.equal(recorded[0]!.causation_id, id)
    assert.equal(recorded[0]!.stream.category, RECONCILES_CATEGORY)
  })

  test('an event whose reconcile keeps dying with its worker is parked after maxDeliveries recorded reconciles, without reconciling again', async () => {
    const calls = new Recorder<string>()
    const fatal: Controller = {
      name: 'fatal',
      categories: ['fatal'],
      async reconcile(_event, ctx) {
        calls.push('called')
        // Runs until its worker goes: the worker "dies" during every reconcile.
        await new Promise((_, reject) =>
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }),
        )
      },
    }
    const f = factoryFor('acme')
    const s = stream('acme', 'f1', 'fatal')
    // The first delivery records nothing (no write before a first reconcile), each redelivery records
    // one: workers 1..3 reconcile and die, worker 4 finds two recorded and parks the event.
    for (let n = 1; n <= BOUNDS.maxDeliveries + 1; n++) {
      const { runner } = await startWorker(fatal, `f${n}`)
      if (n === 1) await h.intents.append(s, [f.intent(s, 'run', {})])
      await calls.until((_c) => calls.items.length >= n, 30_000, `worker f${n} reconciling`)
      await runner.stop()
    }
    await startWorker(fatal, `f${BOUNDS.maxDeliveries + 2}`)
    const outcome = await within(
      Promise.race([
        (async () => {
          await eventually(
            async () => types(await h.facts.readStreamToArray(s)).includes(RECONCILE_FAILED),
            60_000,
            'parked',
          )
          return 'parked'
        })(),
        calls.until((_c) => calls.items.length > BOUNDS.maxDeliveries + 1).then(() => 'reconciled again'),
      ]),
      60_000,
      'the next worker to park the event or reconcile it',
    )
    assert.equal(outcome, 'parked')
    const events = await h.facts.readStreamToArray(s)
    assert.deepEqual(types(events), ['run', RECONCILE_FAILED])
    assert.deepEqual(events[1]!.data, {
      controller: 'fatal',
      reason_code: 'runtime.reconcile_failed',
      attempts: BOUNDS.maxDeliveries,
    })
    assert.equal(calls.items.length, BOUNDS.maxDeliveries + 1, 'not reconciled by the worker that parked it')
    const recorded = await reconciles('fatal', { event_id: events[0]!.event_id, tenant_id: 'acme' })
    assert.deepEqual(
      recorded.map((e) => e.data.attempt),
      [1, 2],
    )
  })

  test("a controller's consumer with a delivery limit is refused: JetStream would drop an event at the limit without a reconcile_failed", async () => {
    const limited: Controller = { name: 'limited', categories: ['limited'], async reconcile() {} }
    await ensureConsumer(await jetstreamManager(h.nc), {
      name: 'ctl_limited',
      filter: coveringFilter(limited),
      maxDeliver: 3,
    })
    const runner = new ControllerRunner({
      controller: limited,
      store: h.facts,
      live: controllerLiveSource(h.nc, limited),
    })
    stops.push(() => runner.stop())
    await assert.rejects(runner.start(), (e: { code?: string; details?: Record<string, unknown> }) => {
      assert.equal(e.code, 'bus.config')
      assert.deepEqual(e.details, { consumer: 'ctl_limited', max_deliver: 3 })
      return true
    })
  })
  test('a NATS cut longer than the ack wait while a reconcile runs: the redelivery after it is ignored, the event reconciled once, nothing recorded', async () => {
    // The runner's own connection reaches nats-server through a forwarder; the relay's does not.
    const natsPort = await freePort()
    const natsTarget = new URL(`nats://127.0.0.1:${h.nats.port}`)
    let link = await forward(natsPort, natsTarget)
    const nc = await h.nats.connect('operator', {
      servers: `127.0.0.1:${natsPort}`,
      reconnectTimeWait: 50,
      maxReconnectAttempts: -1,
    })
    stops.push(async () => {
      await nc.close()
      if (link.listening) await cut(link)
    })
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const entered = new Recorder<number>()
    let finished = 0
    const linked: Controller = {
      name: 'linked',
      categories: ['linked'],
      async reconcile(event, ctx) {
        entered.push(entered.items.length + 1)
        // Until released, or until its runner stops (a failed test must not hang the file's teardown).
        await Promise.race([
          gate,
          new Promise((_, reject) =>
            ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }),
          ),
        ])
        await ctx.emit(ctx.fact('done', { version: event.stream_version }))
        finished++
      },
    }
    const extensions = new Recorder<number>()
    const live = watchedSource(controllerLiveSource(nc, linked, { ackWaitMs: ACK_WAIT_MS }), (d) => {
      deliveries.push({ worker: 'linked', eventId: d.event.event_id, count: d.deliveryCount })
      const working = d.working?.bind(d)
      d.working = () => {
        extensions.push(Date.now())
        working?.()
      }
    })
    const { logger, lines } = recordingLogger()
    const runner = new ControllerRunner({ controller: linked, store: h.facts, live, logger, ...BOUNDS })
    stops.push(() => runner.stop())
    await runner.start()
    const f = factoryFor('acme')
    const s = stream('acme', 'n1', 'linked')
    const id = (await h.intents.append(s, [f.intent(s, 'run', {})])).events[0]!.eventId
    await entered.until(() => true, 30_000, 'the reconcile begun')
    await cut(link)
    const cutAt = Date.now()
    // The runner keeps extending the held delivery's ack wait; none of it reaches the server for three
    // ack waits (nine heartbeats), so the server takes the delivery back.
    await extensions.until((at) => at >= cutAt + 3 * ACK_WAIT_MS, 30_000, 'three ack waits of heartbeats into the cut')
    link = await forward(natsPort, natsTarget)
    const redelivered = await deliveries.until(
      (d) => d.worker === 'linked' && d.eventId === id && d.count > 1,
      30_000,
      'the delivery handed out again after the cut',
    )
    // Ignored by the runner that still holds the first delivery (not queued behind it to run again).
    await lines.until(
      (l) => l.msg === 'redelivery of a held event ignored' && l.fields.event_id === id,
      30_000,
      'the redelivery ignored',
    )
    release()
    await eventually(
      async () =>
        (await jetstreamManager(h.nc)).consumers.info('EVENTPLANE', 'ctl_linked').then((i) => i.num_ack_pending === 0),
      30_000,
      'the event acknowledged',
    )
    assert.ok(redelivered.count > 1)
    assert.equal(finished, 1, 'reconciled once: the redelivery of the held delivery was not reconciled again')
    assert.deepEqual(types(await h.facts.readStreamToArray(s)), ['run', 'done'])
    assert.deepEqual(await reconciles('linked', { event_id: id, tenant_id: 'acme' }), [], 'nothing recorded')
    assert.equal(lines.items.filter((l) => l.msg === 'event parked').length, 0)
  })

  test("beginReconcile counts the runtime's own records only: an intent or another principal's record on the stream is not one", async () => {
    const f = factoryFor('acme')
    const s = stream('acme', 'b1', 'forged')
    await h.intents.append(s, [f.intent(s, 'run', {})])
    const [trigger] = await h.facts.readStreamToArray(s)
    const ref = reconcilesStream('forged', trigger!)
    // A tenant cannot write the reserved category (the factory and the store refuse it)...
    const where = { category: ref.category, id: ref.id }
    const forged = { ...f.intent(s, RECONCILE_STARTED, { controller: 'forged', attempt: 1 }), stream: where }
    await assert.rejects(h.intents.append(ref, [forged]), (e) => isEventplaneError(e, 'core.invalid_name'))
    // ...but an operator's import restores whatever a file holds there (a log from before the prefix): the
    // tenant's intent, one naming the controller as its cause, an internal record caused by someone else.
    const asController = factoryFor('acme', controllerPrincipal('forged'))
    const byController = {
      ...asController.intent(s, RECONCILE_STARTED, { controller: 'forged', attempt: 1 }),
      stream: where,
    }
    const internal = { ...f.internal(s, RECONCILE_STARTED, { controller: 'forged', attempt: 1 }), stream: where }
    const restore = (e: typeof forged) => asSystemEnvelope(validateEnvelope({ ...e }))
    await h.intents.append(ref, [restore(forged), restore(byController)])
    await h.facts.append(ref, [restore(internal)])
    assert.equal(await beginReconcile(h.facts, 'forged', trigger!, 2), 0)
    assert.equal(await beginReconcile(h.facts, 'forged', trigger!, 2), 1)
    assert.equal(await beginReconcile(h.facts, 'forged', trigger!, 2), 2, 'at the bound: nothing recorded')
    assert.deepEqual(
      (await h.facts.readStreamToArray(ref)).map((e) => [e.kind, e.caused_by, e.data.attempt]),
      [
        ['intent', 'user:test', 1],
        ['intent', 'controller:forged', 1],
        ['internal', 'user:test', 1],
        ['internal', 'controller:forged', 1],
        ['internal', 'controller:forged', 2],
      ],
    )
  })
})
