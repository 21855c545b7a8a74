/**
 * A log moved or restored with export → import (docs/deploying.md, "Backup and restore"): the new database
 * renews every `recorded_at`, a new stream and consumer deliver every intent again, and the controller builds
 * the facts it already recorded but for their `occurred_at` (its trigger's `recorded_at`). Real PostgreSQL and
 * nats-server on both sides.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventplaneMetrics } from '@eventplane/bus-nats'
import { InvalidData, type RecordedEvent } from '@eventplane/core'
import { PgEventStore, ROLES, exportEvents, importEvents, verifyLog } from '@eventplane/store-pg'
import { appendPark } from '../src/controller/parked.ts'
import { RECONCILE_STARTED, beginReconcile, reconcilesStream } from '../src/controller/reconciles.ts'
import { ControllerRunner, RECONCILE_FAILED } from '../src/controller/runner.ts'
import type { Controller } from '../src/controller/types.ts'
import { factId } from '../src/controller/fact-ids.ts'
import { controllerLiveSource } from '../src/jetstream-source.ts'
import type { LiveDelivery, LiveSource } from '../src/live-source.ts'
import { Recorder, recordingLogger } from './controller-support.ts'
import { type LiveHarness, startHarness } from './harness.ts'
import { factoryFor, stream } from './helpers.ts'
import { recordingEach } from './live-wrap.ts'

/** How a runner settled a delivery of one event. */
interface Settled {
  eventId: string
  how: 'ack' | 'nak' | 'term'
}

const JOBS = ['a1', 'a2', 'a3', 'drifted', 'poison', 'restarted'] as const
/** Small: the old database's records of `restarted` reach it. */
const MAX_DELIVERIES = 2

describe('a controller after its log was restored by export and import', () => {
  const harnesses: LiveHarness[] = []
  const stops: (() => Promise<void>)[] = []
  /** What the `drifted` job's fact says: changed between the two runs, a genuinely different fact. */
  let generation = 1
  /** The jobs `builder` was called for, in order. */
  let calls: string[] = []

  const builder: Controller = {
    name: 'builder',
    categories: ['job'],
    async reconcile(event, ctx) {
      calls.push(event.stream.id)
      if (event.stream.id === 'poison') throw new InvalidData('cannot build this job')
      const { n } = event.data as { n: number }
      // Two events in one append: the whole batch is compared with its stored copies.
      await ctx.emit(
        ctx.fact('built', { n, generation: event.stream.id === 'drifted' ? generation : 1 }),
        ctx.fact('noted', { n }),
      )
    },
  }

  /** A runner of `builder` on `h` whose deliveries' acks, naks and terminations are recorded in `settled`. */
  async function run(
    h: LiveHarness,
    settled: Recorder<Settled>,
    logger = recordingLogger().logger,
    extra: { metrics?: EventplaneMetrics; loseFirstAckOf?: string } = {},
  ) {
    let lost = false
    const live = recordingEach(
      controllerLiveSource(h.nc, builder, { consumer: 'ctl_builder', ackWaitMs: 5000 }),
      (d, how) => settled.push({ eventId: d.event.event_id, how }),
      (d) => {
        if (lost || d.event.event_id !== extra.loseFirstAckOf) return false
        lost = true
        return true
      },
    )
    const runner = new ControllerRunner({
      controller: builder,
      store: h.facts,
      live,
      retryDelayMs: 20,
      maxDeliveries: MAX_DELIVERIES,
      logger,
      ...(extra.metrics ? { metrics: extra.metrics } : {}),
    })
    stops.push(() => runner.stop())
    await runner.start()
    return runner
  }

  const jobStream = (h: LiveHarness, id: string): Promise<RecordedEvent[]> =>
    h.facts.readStreamToArray(stream('acme', id, 'job'))
  const settledOf = (settled: Recorder<Settled>, eventId: string) =>
    settled.until((s) => s.eventId === eventId, 60_000, `the delivery of ${eventId} settled`)

  /** How each job's intent was settled, the first time. */
  async function outcomes(settled: Recorder<Settled>): Promise<Record<string, Settled['how']>> {
    const out: Record<string, Settled['how']> = {}
    for (const id of JOBS) out[id] = (await settledOf(settled, intents.get(id)!)).how
    return out
  }

  let source: LiveHarness
  let restored: LiveHarness
  const intents = new Map<string, string>()

  before(async () => {
    source = await startHarness('ep_ctl_restore_src')
    harnesses.push(source)
    const f = factoryFor('acme')
    for (const [n, id] of JOBS.entries()) {
      const s = stream('acme', id, 'job')
      const intent = f.intent(s, 'run', { n })
      intents.set(id, intent.event_id)
      await source.intents.append(s, [intent])
    }
    const settled = new Recorder<Settled>()
    const runner = await run(source, settled)
    assert.deepEqual(await outcomes(settled), {
      a1: 'ack',
      a2: 'ack',
      a3: 'ack',
      drifted: 'ack',
      poison: 'term',
      restarted: 'ack',
    })
    await runner.stop()
    // `restarted` was reconciled on redeliveries up to the bound (its workers restarted, say) before its ack:
    // the records the runner makes before each (the function it calls), exported with the tenant.
    const [trigger] = await jobStream(source, 'restarted')
    for (let n = 0; n < MAX_DELIVERIES; n++)
      assert.equal(await beginReconcile(source.facts, 'builder', trigger!, MAX_DELIVERIES), n)

    // The restore: export with the actor, a new database, import with facts, a new stream and relay.
    const lines: string[] = []
    for await (const line of exportEvents(new PgEventStore(source.db.connect(ROLES.operator, 1)), {
      tenant: 'acme',
      includeActor: true,
    }))
      lines.push(line)
    restored = await startHarness('ep_ctl_restore_dst')
    harnesses.push(restored)
    const imported = await importEvents(new PgEventStore(restored.db.connect(ROLES.operator, 1)), lines)
    assert.deepEqual(imported, { imported: lines.length, skipped: 0, conflicts: [] })
  })
  after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {})
    for (const h of harnesses.reverse()) await h.stop()
  })

  test('intents reconciled or parked before the export are acknowledged again with nothing appended, the parked one without a reconcile; a fact that now differs is parked; redeliveries are counted from this deployment only', async () => {
    const before = new Map<string, RecordedEvent[]>()
    for (const id of JOBS) before.set(id, await jobStream(restored, id))
    assert.deepEqual(
      before.get('a1')!.map((e) => e.type),
      ['run', 'built', 'noted'],
    )
    assert.deepEqual(
      before.get('poison')!.map((e) => e.type),
      ['run', RECONCILE_FAILED],
    )
    const trigger = before.get('a1')![0]!
    const fact = before.get('a1')![1]!
    assert.notEqual(
      new Date(trigger.recorded_at).toISOString(),
      fact.occurred_at,
      'the import renewed the trigger’s recorded_at: the fact built again differs in occurred_at',
    )

    generation = 2
    calls = []
    const settled = new Recorder<Settled>()
    const { logger, lines } = recordingLogger()
    const metrics = new EventplaneMetrics()
    const restarted = intents.get('restarted')!
    await run(restored, settled, logger, { metrics, loseFirstAckOf: restarted })
    assert.deepEqual(await outcomes(settled), {
      a1: 'ack',
      a2: 'ack',
      a3: 'ack',
      drifted: 'term',
      poison: 'ack',
      restarted: 'nak',
    })
    // Its first ack lost, `restarted` comes back: a redelivery, counted against maxDeliveries. The two
    // reconciles the old database recorded are not this deployment's: it is reconciled, not parked.
    const again = await settled.until(
      (s) => s.eventId === restarted && s.how !== 'nak',
      60_000,
      'the redelivery of restarted settled',
    )
    assert.equal(again.how, 'ack', 'the redelivery is reconciled and acknowledged, not parked')
    assert.deepEqual(
      (await restored.facts.readStreamToArray(reconcilesStream('builder', before.get('restarted')![0]!))).map((e) => [
        e.type,
        e.data.attempt,
      ]),
      [
        [RECONCILE_STARTED, 1],
        [RECONCILE_STARTED, 2],
        [RECONCILE_STARTED, 3],
      ],
      'the imported records kept; the redelivery recorded after them',
    )
    assert.ok(!calls.includes('poison'), 'the intent parked before the export is not reconciled again')
    assert.deepEqual(
      lines.items.filter((l) => l.msg === 'event parked').map((l) => l.fields.event_id),
      [intents.get('drifted')],
      'only the drifted intent is parked here',
    )
    assert.deepEqual(
      lines.items.filter((l) => l.fields.event === 'intent.already_parked').map((l) => l.fields.event_id),
      [intents.get('poison')],
    )
    const parked = (await metrics.runtime.controllerParked.get()).values.find((v) => v.labels.controller === 'builder')
    assert.equal(parked?.value, 1, 'one park counted: the drifted intent')
    for (const id of ['a1', 'a2', 'a3', 'poison', 'restarted'])
      assert.deepEqual(await jobStream(restored, id), before.get(id), `${id}: nothing appended`)
    const drifted = await jobStream(restored, 'drifted')
    assert.deepEqual(
      drifted.map((e) => e.type),
      ['run', 'built', 'noted', RECONCILE_FAILED],
    )
    assert.deepEqual(drifted[3]!.data, {
      controller: 'builder',
      reason_code: 'store.idempotency_conflict',
      attempts: 1,
    })
    assert.deepEqual(drifted[1]!.data, { n: 3, generation: 1 }, 'the stored fact is kept as it was')
    assert.deepEqual(
      lines.items
        .filter((l) => l.fields.event === 'facts.already_stored')
        .map((l) => l.fields.event_id)
        .sort(),
      ['a1', 'a2', 'a3', 'restarted', 'restarted'].map((id) => intents.get(id)).sort(),
    )
    assert.deepEqual((await verifyLog(restored.db.admin)).breaks, [], 'the restored log still verifies')
  })

  test('a park is read only where one may be stored: on a redelivery, and on a first delivery of an event recorded before the subscription (re)opened; never on the normal path', async () => {
    // The park's ids asked of the store (ParkChecks → storedPark → readEvents).
    const asked: string[] = []
    class Counting extends PgEventStore {
      override readEvents(tenant: string, ids: readonly string[]) {
        asked.push(...ids)
        return super.readEvents(tenant, ids)
      }
    }
    let reconciles = 0
    const checked: Controller = {
      name: 'checked',
      categories: ['checked'],
      async reconcile() {
        reconciles++
        throw new InvalidData('cannot check this')
      },
    }
    // An in-process source: `push` hands a delivery over; `remake` ends the subscription (a consumer made
    // again), and the runner opens the next one.
    let queue: LiveDelivery[] = []
    let wake = () => {}
    let fail: Error | undefined
    const opens = new Recorder<number>()
    const live: LiveSource = {
      prepare: async () => {},
      open: async (signal) => {
        signal.addEventListener('abort', () => wake())
        opens.push(opens.items.length + 1)
        return {
          async *[Symbol.asyncIterator]() {
            while (!signal.aborted) {
              if (fail) throw fail
              const d = queue.shift()
              if (d) yield d
              else await new Promise<void>((r) => (wake = r))
            }
          },
          stop: async () => {
            fail = undefined
            queue = []
          },
          closed: new Promise(() => {}),
        }
      },
    }
    const settled = new Recorder<{ n: number; how: Settled['how'] }>()
    let pushed = 0
    /** Delivers `event` (delivery count `count`) and waits until it is settled and no longer held. */
    async function deliver(event: RecordedEvent, count: number): Promise<Settled['how']> {
      const n = ++pushed
      const record = (how: Settled['how']) => () => settled.push({ n, how })
      queue.push({
        event,
        deliveryCount: count,
        redelivered: count > 1,
        ack: record('ack'),
        nak: record('nak'),
        term: record('term'),
      })
      wake()
      const { how } = await settled.until((s) => s.n === n, 30_000, `delivery ${n} settled`)
      // The runner lets go of the delivery in the microtasks after its settle (no I/O between).
      await new Promise(setImmediate)
      return how
    }
    const parkId = (e: RecordedEvent) => factId('checked', e.event_id, RECONCILE_FAILED)
    const f = factoryFor('acme')
    const append = async (id: string): Promise<RecordedEvent> => {
      const s = stream('acme', id, 'checked')
      await restored.intents.append(s, [f.intent(s, 'run', {})])
      return (await restored.facts.readStreamToArray(s))[0]!
    }

    // Parked before the runner starts (as a restore brings it): recorded before the subscription opened.
    const old = await append('old')
    assert.equal(await appendPark(restored.facts, 'checked', old, 'core.invalid_data', 1), 'appended')
    const runner = new ControllerRunner({ controller: checked, store: new Counting(restored.facts.sql), live })
    stops.push(() => runner.stop())
    await runner.start()
    assert.equal(await deliver(old, 1), 'ack', 'recorded before the runner opened: its park read, not reconciled')
    assert.deepEqual([asked, reconciles], [[parkId(old)], 0])

    // The normal path: recorded while the runner runs, a first delivery: no read; reconciled and parked.
    const fresh = await append('fresh')
    assert.equal(await deliver(fresh, 1), 'term')
    assert.deepEqual([asked, reconciles], [[parkId(old)], 1], 'no park read on a first delivery of a new event')

    // Its terminate lost: the redelivery reads its park and is acknowledged.
    assert.equal(await deliver(fresh, 2), 'ack')
    assert.deepEqual([asked, reconciles], [[parkId(old), parkId(fresh)], 1])

    // Its consumer made again: delivered once more for the first time, recorded before the reopen.
    fail = new Error('consumer gone')
    wake()
    await opens.until((n) => n === 2, 30_000, 'the subscription reopened')
    assert.equal(await deliver(fresh, 1), 'ack', 'recorded before the subscription reopened: its park read')
    assert.deepEqual([asked, reconciles], [[parkId(old), parkId(fresh), parkId(fresh)], 1])
    await runner.stop()
  })
})
