import assert from 'node:assert/strict'
import type { Server } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { EventplaneMetrics, type Logger } from '@eventplane/bus-nats'
import { type RecordedEvent, WrongExpectedVersion } from '@eventplane/core'
import { PgEventStore, ROLES, connectPg, roleUrl } from '@eventplane/store-pg'
import type { Sql } from 'postgres'
import { ControllerRunner, RECONCILE_FAILED } from '../src/controller/runner.ts'
import type { Controller } from '../src/controller/types.ts'
import { controllerLiveSource } from '../src/jetstream-source.ts'
import { cut, forward, freePort } from './forwarder.ts'
import { type LiveHarness, startHarness } from './harness.ts'
import { eventually, factoryFor, stream, within } from './helpers.ts'

/** Small bounds, so that an outage outlasts them quickly. */
const BOUNDS = { maxAttempts: 2, maxDeliveries: 2, retryDelayMs: 5, maxRetryDelayMs: 20 }

/** Log lines by message (fields are ids and codes only); `seen(msg)` resolves at the first such line. */
function recordingLogger() {
  const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = []
  const waiters: { msg: string; resolve: () => void }[] = []
  const log =
    (level: string) =>
    (fields: object, msg = ''): void => {
      lines.push({ level, msg, fields: fields as Record<string, unknown> })
      for (const w of waiters.filter((w) => w.msg === msg)) w.resolve()
    }
  const logger: Logger = { debug: () => {}, info: log('info'), warn: log('warn'), error: log('error') }
  const seen = (msg: string): Promise<void> =>
    lines.some((l) => l.msg === msg) ? Promise.resolve() : new Promise((resolve) => waiters.push({ msg, resolve }))
  return { logger, lines, seen }
}

describe('controllers during a PostgreSQL outage', () => {
  let h: LiveHarness
  let port: number
  let target: URL
  let proxy: Server | undefined
  const stops: (() => Promise<void>)[] = []

  /** A fact writer pool that reaches PostgreSQL only through the forwarder on `port`. */
  function proxiedStore(): PgEventStore {
    const url = new URL(target)
    url.port = String(port)
    const sql: Sql = connectPg(url.toString(), { max: 2, connectTimeout: 2 })
    stops.push(() => sql.end({ timeout: 1 }))
    return new PgEventStore(sql)
  }
  const types = (events: RecordedEvent[]) => events.map((e) => e.type)

  before(async () => {
    h = await startHarness('ep_ctl_outage')
    port = await freePort()
    target = new URL(roleUrl(h.db.url, ROLES.factWriter))
  })
  after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {})
    if (proxy?.listening) await cut(proxy)
    await h?.stop()
  })

  test('intents that arrive while PostgreSQL is unreachable past the parking bounds are reconciled once it is back, in order, not parked', async () => {
    // Calls of reconcile; `outlasted` resolves once the outage has outlasted both parking bounds twice over
    // (the pool's own reconnect backoff spaces the later calls out: postgres.js waits longer after each refusal).
    let calls = 0
    let outlast!: () => void
    const outlasted = new Promise<void>((resolve) => (outlast = resolve))
    const patient: Controller = {
      name: 'patient',
      categories: ['outage'],
      async reconcile(event, ctx) {
        if (++calls >= 2 * (BOUNDS.maxAttempts + BOUNDS.maxDeliveries)) outlast()
        await ctx.emit(ctx.fact('done', { version: event.stream_version }))
      },
    }
    const metrics = new EventplaneMetrics()
    const gauge = async (name: 'controllerWaiting' | 'controllerParked') =>
      (await metrics.runtime[name].get()).values.find((v) => v.labels.controller === 'patient')?.value ?? 0
    const { logger, lines, seen } = recordingLogger()
    // A short ack wait: the runner must extend it for the deliveries it holds.
    const live = controllerLiveSource(h.nc, patient, { ackWaitMs: 1000 })
    const runner = new ControllerRunner({
      controller: patient,
      store: proxiedStore(),
      live,
      metrics,
      logger,
      ...BOUNDS,
    })
    stops.push(() => runner.stop())
    await runner.start()

    // PostgreSQL is unreachable for the runner (nothing listens on its port); the log itself takes the intents.
    const f = factoryFor('acme')
    const s = stream('acme', 'o1', 'outage')
    await h.intents.append(s, [f.intent(s, 'run', { n: 1 }), f.intent(s, 'run', { n: 2 })])
    const outcome = await within(
      Promise.race([outlasted.then(() => 'still retrying'), seen('event parked').then(() => 'parked')]),
      120_000,
      'the runner to retry past the parking bounds',
    )
    assert.equal(outcome, 'still retrying')
    assert.equal(await gauge('controllerWaiting'), 1, 'the held delivery is counted as waiting')
    const waits = lines.filter((l) => l.msg.startsWith('reconcile waits for an unavailable dependency'))
    assert.ok(waits.length > 0)
    for (const l of waits) {
      assert.equal(l.fields.code, 'store.unavailable')
      assert.equal(l.fields.stream_version, 1, 'the later event of the stream waits behind the held one')
      assert.equal(l.fields.data, undefined)
    }

    proxy = await forward(port, target)
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
    assert.equal(lines.filter((l) => l.msg === 'event parked').length, 0)
  })

  test('a reconcile failing by its own fault is still parked after maxAttempts; the park waits for PostgreSQL', async () => {
    if (proxy?.listening) await cut(proxy)
    const attempts: number[] = []
    const racing: Controller = {
      name: 'racing',
      categories: ['own_fault'],
      async reconcile(event, ctx) {
        attempts.push(ctx.attempt)
        // Its own stale expectation: retried, and counted toward parking.
        throw new WrongExpectedVersion(`${event.stream.category}/${event.stream.id}`, 0, event.stream_version)
      },
    }
    const { logger, seen } = recordingLogger()
    const live = controllerLiveSource(h.nc, racing, { ackWaitMs: 1000 })
    const runner = new ControllerRunner({ controller: racing, store: proxiedStore(), live, logger, ...BOUNDS })
    stops.push(() => runner.stop())
    await runner.start()
    const f = factoryFor('acme')
    const s = stream('acme', 'r1', 'own_fault')
    await h.intents.append(s, [f.intent(s, 'run', {})])

    // Parking needs PostgreSQL: the runner holds the delivery until it can write reconcile_failed.
    await within(
      seen('parking waits for an unavailable dependency, retrying'),
      60_000,
      'the park to wait for PostgreSQL',
    )
    assert.deepEqual(attempts, [1, 2], 'reconciled maxAttempts times, then parked')
    proxy = await forward(port, target)
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
})
