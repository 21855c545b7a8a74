import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventplaneMetrics, STREAM_NAME } from '@eventplane/bus-nats'
import { jetstreamManager } from '@nats-io/jetstream'
import { EventplaneError, type RecordedEvent, WrongExpectedVersion } from '@eventplane/core'
import { DependencyWait } from '../src/controller/dependency-wait.ts'
import { ControllerRunner, RECONCILE_FAILED } from '../src/controller/runner.ts'
import type { Controller } from '../src/controller/types.ts'
import { controllerLiveSource } from '../src/jetstream-source.ts'
import { type LogLine, PgOutage, Recorder, holds, recordingLogger } from './controller-support.ts'
import type { LiveDelivery } from '../src/live-source.ts'
import { watchedSource } from './live-wrap.ts'
import { type LiveHarness, startHarness } from './harness.ts'
import { eventually, factoryFor, stream, within } from './helpers.ts'

/** Small bounds, so that an outage outlasts them quickly. */
const BOUNDS = { maxAttempts: 2, maxDeliveries: 2, retryDelayMs: 5, maxRetryDelayMs: 20 }

describe('controllers during a PostgreSQL outage', () => {
  let h: LiveHarness
  let pg: PgOutage
  const stops: (() => Promise<void>)[] = []
  const types = (events: RecordedEvent[]) => events.map((e) => e.type)
  /** The first line logged with message `msg` (no deadline of its own). */
  const seen = (lines: Recorder<LogLine>, msg: string) => lines.until((l) => l.msg === msg)

  before(async () => {
    h = await startHarness('ep_ctl_outage')
    pg = await PgOutage.start(h)
  })
  after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {})
    await pg?.stop()
    await h?.stop()
  })

  test('intents whose reconcile meets PostgreSQL unreachable, past the parking bounds, are reconciled once it is back, in order, not parked', async () => {
    // Calls of reconcile; `outlasted` resolves once the outage has outlasted both parking bounds twice over
    // (the test pool reconnects every 50 ms, see PgOutage.store: the calls come quickly). PostgreSQL goes
    // away in the first call: before it, the first delivery after the runner opened reads the database's clock
    // (ParkChecks: an event recorded before it may be parked already), then maybe the intent's park (none).
    let calls = 0
    let outlast!: () => void
    const outlasted = new Promise<void>((resolve) => (outlast = resolve))
    const patient: Controller = {
      name: 'patient',
      categories: ['outage'],
      async reconcile(event, ctx) {
        if (++calls === 1) await pg.cut()
        if (calls >= 2 * (BOUNDS.maxAttempts + BOUNDS.maxDeliveries)) outlast()
        await ctx.emit(ctx.fact('done', { version: event.stream_version }))
      },
    }
    const metrics = new EventplaneMetrics()
    const gauge = async (name: 'controllerWaiting' | 'controllerParked') =>
      (await metrics.runtime[name].get()).values.find((v) => v.labels.controller === 'patient')?.value ?? 0
    const { logger, lines } = recordingLogger()
    // A short ack wait: the runner must extend it for the deliveries it holds.
    const live = controllerLiveSource(h.nc, patient, { ackWaitMs: 1000 })
    const runner = new ControllerRunner({
      controller: patient,
      store: pg.store(),
      live,
      metrics,
      logger,
      ...BOUNDS,
    })
    stops.push(() => runner.stop())
    await pg.restore()
    await runner.start()

    // PostgreSQL becomes unreachable for the runner (nothing listens on its port); the log itself takes the intents.
    const f = factoryFor('acme')
    const s = stream('acme', 'o1', 'outage')
    await h.intents.append(s, [f.intent(s, 'run', { n: 1 }), f.intent(s, 'run', { n: 2 })])
    const outcome = await within(
      Promise.race([outlasted.then(() => 'still retrying'), seen(lines, 'event parked').then(() => 'parked')]),
      120_000,
      'the runner to retry past the parking bounds',
    )
    assert.equal(outcome, 'still retrying')
    assert.equal(await gauge('controllerWaiting'), 1, 'the held delivery is counted as waiting')
    const waits = lines.items.filter((l) => l.msg.startsWith('reconcile waits for an unavailable dependency'))
    assert.ok(waits.length > 0)
    for (const l of waits) {
      assert.equal(l.fields.code, 'store.unavailable')
      assert.equal(l.fields.stream_version, 1, 'the later event of the stream waits behind the held one')
      assert.equal(l.fields.data, undefined)
    }

    await pg.restore()
    await eventually(
      async () => types(await h.facts.readStreamToArray(s)).filter((t) => t === 'done').length === 2,
      60_000,
      'both intents reconciled once PostgreSQL is back',
    )
    const events = await h.facts.readStreamToArray(s)
    assert.deepEqual(types(events), ['run', 'run', 'done', 'done'], 'reconciled once each, nothing parked')
    assert.deepEqual(
      events.slice(2).map((e) => e.data.version),
      [1, 2],
      'in stream order',
    )
    await eventually(async () => (await gauge('controllerWaiting')) === 0, 30_000, 'the waiting gauge back to 0')
    assert.equal(await gauge('controllerParked'), 0)
    assert.equal(lines.items.filter((l) => l.msg === 'event parked').length, 0)
  })

  test('a reconcile failing by its own fault is still parked after maxAttempts; the park waits for PostgreSQL', async () => {
    await pg.restore()
    const attempts: number[] = []
    const racing: Controller = {
      name: 'racing',
      categories: ['own_fault'],
      async reconcile(event, ctx) {
        attempts.push(ctx.attempt)
        // PostgreSQL goes away once the runner has read the database's clock (and maybe the intent's park,
        // none) and reconciles.
        if (ctx.attempt === 1) await pg.cut()
        // Its own stale expectation: retried, and counted toward parking.
        throw new WrongExpectedVersion(`${event.stream.category}/${event.stream.id}`, 0, event.stream_version)
      },
    }
    const { logger, lines } = recordingLogger()
    const live = controllerLiveSource(h.nc, racing, { ackWaitMs: 1000 })
    const runner = new ControllerRunner({ controller: racing, store: pg.store(), live, logger, ...BOUNDS })
    stops.push(() => runner.stop())
    await runner.start()
    const f = factoryFor('acme')
    const s = stream('acme', 'r1', 'own_fault')
    await h.intents.append(s, [f.intent(s, 'run', {})])

    // Parking needs PostgreSQL: the runner holds the delivery until it can write reconcile_failed.
    await within(
      seen(lines, 'parking waits for an unavailable dependency, retrying'),
      60_000,
      'the park to wait for PostgreSQL',
    )
    assert.deepEqual(attempts, [1, 2], 'reconciled maxAttempts times, then parked')
    await pg.restore()
    await eventually(
      async () => types(await h.facts.readStreamToArray(s)).includes(RECONCILE_FAILED),
      60_000,
      'the event parked once PostgreSQL is back',
    )
    const failed = (await h.facts.readStreamToArray(s)).filter((e) => e.type === RECONCILE_FAILED)
    assert.equal(failed.length, 1)
    assert.deepEqual(failed[0]!.data, {
      controller: 'racing',
      reason_code: 'store.wrong_expected_version',
      attempts: BOUNDS.maxAttempts,
    })
    assert.deepEqual(attempts, [1, 2], 'not reconciled again')
  })
  test('deliveries held through an outage three ack waits long (waiting, and queued behind their stream) are not redelivered to a second worker, and are reconciled once after', async () => {
    await pg.cut()
    const ACK_WAIT_MS = 1000
    const deliveries = new Recorder<{ worker: number; eventId: string; count: number }>()
    const reconciled: { worker: number; version: number }[] = []
    const workers = new Map<number, Recorder<LogLine>>()
    /** A worker of the controller `held` on the durable consumer `ctl_held`, with its own pool behind the forwarder. */
    const startWorker = async (worker: number): Promise<void> => {
      const controller: Controller = {
        name: 'held',
        categories: ['held'],
        async reconcile(event, ctx) {
          await ctx.emit(ctx.fact('done', { version: event.stream_version }))
          reconciled.push({ worker, version: event.stream_version })
        },
      }
      const { logger, lines } = recordingLogger()
      const live = watchedSource(controllerLiveSource(h.nc, controller, { ackWaitMs: ACK_WAIT_MS }), (d) =>
        deliveries.push({ worker, eventId: d.event.event_id, count: d.deliveryCount }),
      )
      const runner = new ControllerRunner({ controller, store: pg.store(), live, logger, ...BOUNDS })
      stops.push(() => runner.stop())
      await runner.start()
      workers.set(worker, lines)
    }
    // Worker 1 takes both intents of the stream: the first waits for PostgreSQL (its retries extend its ack
    // wait too), the second is queued behind it (only the runner's heartbeat extends it).
    await startWorker(1)
    const f = factoryFor('acme')
    const s = stream('acme', 'h1', 'held')
    const ids = (await h.intents.append(s, [f.intent(s, 'run', { n: 1 }), f.intent(s, 'run', { n: 2 })])).events.map(
      (e) => e.eventId,
    )
    for (const id of ids) await deliveries.until((d) => d.eventId === id, 30_000, 'both intents delivered to worker 1')
    const lines = workers.get(1)!
    const firstWait = await lines.until(holds(ids[0]!), 30_000, 'the first intent held')
    await startWorker(2)
    // The outage outlasts the ack wait three times over: worker 1 is still waiting then (without the
    // extension the server redelivers after ~1 s, to worker 2 or to worker 1).
    await lines.until(
      (l) => holds(ids[0]!)(l) && l.at >= firstWait.at + 3 * ACK_WAIT_MS,
      60_000,
      'worker 1 still waiting three ack waits after it began',
    )
    const consumer = async () => (await jetstreamManager(h.nc)).consumers.info(STREAM_NAME, 'ctl_held')
    // The intents' delivery counts, by worker (the `done` facts come through the consumer too).
    const handedOut = () => deliveries.items.filter((d) => ids.includes(d.eventId)).map((d) => `${d.worker}:${d.count}`)
    assert.deepEqual(handedOut(), ['1:1', '1:1'], 'each handed out once, to worker 1: never redelivered')
    const during = await consumer()
    assert.equal(during.num_redelivered, 0)
    assert.equal(during.num_ack_pending, 2, 'both still held, unacknowledged')
    assert.deepEqual(reconciled, [], 'nothing reconciled while PostgreSQL is away')

    await pg.restore()
    await eventually(async () => (await consumer()).num_ack_pending === 0, 60_000, 'both acknowledged once it is back')
    assert.deepEqual(types(await h.facts.readStreamToArray(s)), ['run', 'run', 'done', 'done'])
    assert.deepEqual(
      reconciled,
      [
        { worker: 1, version: 1 },
        { worker: 1, version: 2 },
      ],
      'reconciled once each, in order, by the worker that held them',
    )
    assert.deepEqual(handedOut(), ['1:1', '1:1'], 'never redelivered')
    assert.equal((await consumer()).num_redelivered, 0)
  })
})

describe('a dependency wait (one held delivery)', () => {
  const unavailable = () => new EventplaneError('store.unavailable', 'PostgreSQL is unreachable')
  const setup = (retryDelayMs: number, maxRetryDelayMs: number) => {
    const metrics = new EventplaneMetrics()
    const { logger, lines } = recordingLogger()
    const stop = new AbortController()
    const naks: (number | undefined)[] = []
    let working = 0
    const d = {
      event: { event_id: 'e1' } as RecordedEvent,
      deliveryCount: 1,
      redelivered: false,
      ack: () => {},
      nak: (ms?: number) => void naks.push(ms),
      term: () => {},
      working: () => void working++,
    } satisfies LiveDelivery
    const wait = new DependencyWait(
      { controller: 'c', signal: stop.signal, log: logger, metrics, retryDelayMs, maxRetryDelayMs },
      { controller: 'c', event_id: 'e1' },
    )
    const value = async (name: 'controllerWaiting' | 'controllerRetries') =>
      (await metrics.runtime[name].get()).values.find((v) => v.labels.controller === 'c')?.value ?? 0
    return { wait, d, lines, stop, naks, value, worked: () => working }
  }

  test('retries back off doubling from retryDelayMs up to maxRetryDelayMs, each counted; waiting counted once until done; done starts over', async () => {
    const { wait, d, lines, value, worked } = setup(1, 4)
    for (let i = 0; i < 5; i++) await wait.retry(d, unavailable(), 'held')
    assert.equal(await value('controllerWaiting'), 1)
    assert.equal(await value('controllerRetries'), 5)
    assert.equal(worked(), 5, 'each wait extends the ack wait')
    wait.done()
    assert.equal(await value('controllerWaiting'), 0)
    await wait.retry(d, unavailable(), 'held')
    assert.equal(await value('controllerWaiting'), 1, 'a new outage counted again')
    wait.done()
    wait.done()
    assert.equal(await value('controllerWaiting'), 0, 'done twice counts down once')
    const delays = lines.items.map((l) => [l.fields.waits, l.fields.retry_in_ms, l.fields.code])
    assert.deepEqual(delays, [
      [1, 1, 'store.unavailable'],
      [2, 2, 'store.unavailable'],
      [3, 4, 'store.unavailable'],
      [4, 4, 'store.unavailable'],
      [5, 4, 'store.unavailable'],
      [1, 1, 'store.unavailable'],
    ])
  })

  test('before a reconcile: an outage is retried, another failure naks for maxRetryDelayMs, a stop ends a wait at once and is not a failure', async () => {
    const { wait, d, lines, stop, naks } = setup(1, 50)
    let calls = 0
    const after2 = await wait.beforeReconcile(d, { doing: 'reading', do: 'read' }, async () => {
      if (++calls < 3) throw unavailable()
      return 'read'
    })
    assert.deepEqual(after2, { value: 'read' })
    assert.equal(lines.items.filter((l) => l.level === 'warn').length, 2)
    const failed = await wait.beforeReconcile(d, { doing: 'reading', do: 'read' }, async () => {
      throw new Error('no such table')
    })
    assert.equal(failed, undefined)
    assert.deepEqual(naks, [50], "nak'ed to come back after the longest delay")
    assert.equal(lines.items.at(-1)?.msg, 'could not read, will retry')
    // A stop during a step that then fails: no nak, no error line (the stop is not the event's failure).
    const logged = lines.items.length
    const stopped = await wait.beforeReconcile(d, { doing: 'reading', do: 'read' }, async () => {
      stop.abort()
      throw new Error('pool ended')
    })
    assert.equal(stopped, undefined)
    assert.deepEqual(naks, [50])
    assert.equal(lines.items.length, logged)
    // A stop ends a long wait's sleep at once (an hour's delay would outlast the test's timeout).
    const { wait: long, d: d2, stop: stop2 } = setup(3_600_000, 3_600_000)
    const held = long.retry(d2, unavailable(), 'held')
    stop2.abort()
    await within(held, 10_000, 'the wait ended by the stop')
  })
})
