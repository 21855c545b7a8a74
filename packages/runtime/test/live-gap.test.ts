import assert from 'node:assert/strict'
import { after, afterEach, before, describe, test } from 'node:test'
import { type Checkpoint, compareCheckpoints } from '@eventplane/core'
import { type Deferred, deferred } from '../src/deferred.ts'
import { projectionLiveSource } from '../src/jetstream-source.ts'
import type { LiveDelivery, LiveSource, LiveSubscription } from '../src/live-source.ts'
import { projectionDigest } from '../src/projection/digest.ts'
import { rebuildProjection } from '../src/projection/rebuild.ts'
import { ProjectionRunner } from '../src/projection/runner.ts'
import { type Projection, checkpointOf, defineReducerProjection } from '../src/projection/types.ts'
import { categoryTotals, streamCounter } from './fixtures.ts'
import { type LiveHarness, startHarness } from './harness.ts'
import { eventually, factoryFor, stream, within } from './helpers.ts'

/** Counts one tenant's events of one type per stream: its consumer delivers more than it applies. */
const acmeScaled = defineReducerProjection({
  ...streamCounter,
  name: 'test_gap_acme_scaled',
  filter: { tenant: 'acme', types: ['scaled'] },
})

/** The type of the event whose deliveries come late. */
const HELD = 'held_back'

/**
 * A live source that holds back every delivery of the `HELD` event (the
 * first one and any redelivery, in whichever subscription) until `release()`,
 * and lets every later delivery through meanwhile: a delivery overtaken by a
 * later one, as on two runners sharing a durable consumer or a redelivery
 * after the ack wait while newer messages flow.
 */
class HoldBack {
  readonly seen: Deferred<Checkpoint> = deferred()
  /** Settles once a released delivery of the held event was acked, nak'd or terminated. */
  readonly settled: Deferred<string> = deferred()
  /** Where the held event sits in the log, once its first delivery arrived. */
  heldAt: Checkpoint | undefined
  readonly #released: Deferred<void> = deferred()
  #isReleased = false
  readonly #held: LiveDelivery[] = []

  release(): void {
    this.#isReleased = true
    this.#released.resolve()
  }

  get released(): boolean {
    return this.#isReleased
  }

  wrap(source: LiveSource): LiveSource {
    return { prepare: () => source.prepare(), open: async (signal) => this.#subscription(await source.open(signal)) }
  }

  #subscription(sub: LiveSubscription): LiveSubscription {
    const self = this
    return {
      stop: () => sub.stop(),
      closed: sub.closed,
      async *[Symbol.asyncIterator](): AsyncGenerator<LiveDelivery> {
        const it = sub[Symbol.asyncIterator]()
        let next = it.next()
        for (;;) {
          if (self.#isReleased && self.#held.length > 0) {
            yield* self.#held.splice(0)
            continue
          }
          const waiting = self.#held.length > 0 ? self.#released.promise.then(() => 'released' as const) : undefined
          const r = await (waiting ? Promise.race([next, waiting]) : next)
          if (r === 'released') continue
          if (r.done) return
          next = it.next()
          if (r.value.event.type === HELD && !self.#isReleased) {
            self.#held.push(self.#settling(r.value))
            self.heldAt ??= checkpointOf(r.value.event)
            self.seen.resolve(self.heldAt)
            continue
          }
          yield r.value
        }
      },
    }
  }

  #settling(d: LiveDelivery): LiveDelivery {
    const settled = this.settled
    return {
      event: d.event,
      deliveryCount: d.deliveryCount,
      redelivered: d.redelivered,
      async ack() {
        try {
          await d.ack()
        } finally {
          settled.resolve('ack')
        }
      },
      nak(delayMs) {
        d.nak(delayMs)
        settled.resolve('nak')
      },
      term() {
        d.term()
        settled.resolve('term')
      },
      ...(d.working ? { working: () => d.working?.() } : {}),
    }
  }
}

describe('a live delivery overtaken by a later one', () => {
  let h: LiveHarness
  let appended = 0
  const runners: ProjectionRunner[] = []

  async function append(tag: string, type = 'scaled', tenant = 'acme'): Promise<void> {
    const s = stream(tenant, `${tag}${appended % 3}`, appended % 2 ? 'deployment' : 'volume')
    await h.intents.append(s, [factoryFor(tenant).intent(s, type, { tag })])
    appended++
  }

  async function outputCount(projection: Projection): Promise<number> {
    const [row] =
      projection === streamCounter
        ? await h.db.admin<{ n: number }[]>`
            select coalesce(sum((state->>'count')::int), 0)::int as n
              from eventplane.projection_state where projection = ${streamCounter.name}`
        : await h.db.admin<{ n: number }[]>`
            select coalesce(sum(events), 0)::int as n from eventplane_views.test_category_totals`
    return row!.n
  }

  before(async () => {
    h = await startHarness('ep_live_gap')
  })
  afterEach(async () => {
    await Promise.all(runners.splice(0).map((r) => r.stop()))
  })
  after(async () => {
    await h?.stop()
  })

  for (const projection of [streamCounter, categoryTotals]) {
    test(`is still applied, exactly once, after the later one moved the checkpoint past it (${projection.name})`, async () => {
      await append('before')
      const hold = new HoldBack()
      const live = hold.wrap(
        projectionLiveSource(h.nc, projection, { consumer: `gap_${projection.name}`, ackWaitMs: 30_000 }),
      )
      const runner = new ProjectionRunner({
        projection,
        sql: h.projector,
        live,
        retryDelayMs: 20,
        // Release the held delivery once a commit moved the checkpoint past it: a later event was applied.
        afterCommit: (info) => {
          if (!hold.released && hold.heldAt && compareCheckpoints(info.checkpoint, hold.heldAt) >= 0) hold.release()
        },
      })
      runners.push(runner)
      await within(runner.start(), 60_000, 'the runner goes live')

      await append('w', HELD)
      await within(hold.seen.promise, 60_000, 'the delivery to hold back arrives')
      for (let i = 0; i < 4; i++) await append(`x${i}`)
      await within(hold.settled.promise, 60_000, 'the held delivery, released after a later commit, is settled')
      const end = await h.logEnd()
      await eventually(() => compareCheckpoints(runner.checkpoint, end) >= 0, 60_000, 'the runner reaches the end')
      await runner.stop()

      assert.ok(hold.released, 'the held delivery came after a later event was committed')
      assert.equal(await outputCount(projection), appended, 'every appended event applied exactly once')
      const liveDigest = await projectionDigest(h.projector, projection)
      const rebuilt = await rebuildProjection({ projection, sql: h.projector })
      assert.equal(rebuilt.digest?.sha256, liveDigest.sha256, 'the live output equals a rebuild')
    })
  }

  test('a filtered projection proves its live batches gap-free without resyncing: the count applies its filter', async () => {
    const resyncs: string[] = []
    const logger = {
      debug() {},
      info() {},
      error() {},
      warn(fields: { code?: string }, msg?: string) {
        if (msg?.includes('resyncing')) resyncs.push(fields.code ?? 'unknown')
      },
    }
    let liveEvents = 0
    const runner = new ProjectionRunner({
      projection: acmeScaled,
      sql: h.projector,
      live: projectionLiveSource(h.nc, acmeScaled, { consumer: 'gap_acme_scaled', ackWaitMs: 30_000 }),
      logger,
      onProgress: (p) => {
        if (p.phase === 'live') liveEvents = p.events
      },
    })
    runners.push(runner)
    await within(runner.start(), 60_000, 'the runner goes live')
    // Other tenants' events (not delivered) and acme's other types (delivered, not applied) between acme's scaled ones.
    for (let i = 0; i < 9; i++) await append(`f${i}`, i % 2 ? 'created' : 'scaled', i % 3 === 1 ? 'globex' : 'acme')
    await append('flast')
    const end = await h.logEnd()
    await eventually(() => compareCheckpoints(runner.checkpoint, end) >= 0, 60_000, 'the runner reaches its last event')
    await runner.stop()

    assert.deepEqual(resyncs, [], 'no live batch was taken for a gap')
    assert.ok(liveEvents > 0, 'events were applied live')
    const [expected] = await h.db.admin<{ n: number }[]>`
      select count(*)::int as n from eventplane.events where tenant_id = 'acme' and type = 'scaled'`
    const [counted] = await h.db.admin<{ n: number }[]>`
      select coalesce(sum((state->>'count')::int), 0)::int as n
        from eventplane.projection_state where projection = ${acmeScaled.name}`
    assert.equal(counted!.n, expected!.n, "every acme 'scaled' event applied exactly once")
    const rebuilt = await rebuildProjection({ projection: acmeScaled, sql: h.projector })
    assert.equal(rebuilt.digest?.sha256, (await projectionDigest(h.projector, acmeScaled)).sha256)
  })
})
