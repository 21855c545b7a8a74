import assert from 'node:assert/strict'
import { after, afterEach, before, describe, test } from 'node:test'
import { type Checkpoint, compareCheckpoints } from '@eventplane/core'
import type { LiveSource } from '../src/live-source.ts'
import { projectionLiveSource } from '../src/jetstream-source.ts'
import { projectionDigest } from '../src/projection/digest.ts'
import { rebuildProjection } from '../src/projection/rebuild.ts'
import { ProjectionRunner } from '../src/projection/runner.ts'
import { type CommitInfo, type Projection, type ProjectionProgress, checkpointOf } from '../src/projection/types.ts'
import { categoryTotals, streamCounter } from './fixtures.ts'
import { type LiveHarness, startHarness } from './harness.ts'
import { eventually, factoryFor, stream, within } from './helpers.ts'
import { mapDeliveries, overriding, watchedSource } from './live-wrap.ts'

describe('projections live on JetStream', () => {
  let h: LiveHarness
  let appended = 0
  const runners: ProjectionRunner[] = []

  async function appendMany(n: number, tag: string): Promise<void> {
    for (let i = 0; i < n; i++) {
      const tenant = i % 3 === 0 ? 'globex' : 'acme'
      const s = stream(tenant, `${tag}${i % 4}`, i % 2 ? 'deployment' : 'volume')
      await h.intents.append(s, [factoryFor(tenant).intent(s, i % 5 ? 'scaled' : 'created', { i })])
      appended++
    }
  }

  function runner(
    projection: Projection,
    consumer: string,
    extra: Partial<ConstructorParameters<typeof ProjectionRunner>[0]> = {},
    wrap = (s: LiveSource) => s,
  ): ProjectionRunner {
    const live = wrap(projectionLiveSource(h.nc, projection, { consumer, ackWaitMs: 1000 }))
    const r = new ProjectionRunner({ projection, sql: h.projector, live, batchSize: 5, ...extra })
    runners.push(r)
    return r
  }

  const reachesEnd = async (r: ProjectionRunner): Promise<void> => {
    const end = await h.logEnd()
    await eventually(
      () => compareCheckpoints(r.checkpoint, end) >= 0,
      60_000,
      `${r.engine.projection.name} reaches the end of the log`,
    )
  }

  // The gap-safe read holds back every event whose transaction is not older than all those still open
  // that could write into this log (0018): a catch-up started meanwhile may read none of them,
  // and they come live instead. Wait until the ones appended so far are readable.
  const readableInGapSafeOrder = async (): Promise<void> => {
    const end = await h.logEnd()
    await eventually(
      async () => {
        const [r] = await h.db.admin<{ ok: boolean }[]>`
          select ${end.txId.toString()}::xid8 < eventplane.log_horizon(pg_current_snapshot()) as ok`
        return r!.ok
      },
      60_000,
      'the events appended so far are readable in the gap-safe order (an older transaction is still open)',
    )
  }

  before(async () => {
    h = await startHarness('ep_proj_live')
  })
  // A test that failed halfway must not leave its runners consuming beside the next test's.
  afterEach(async () => {
    await Promise.all(runners.splice(0).map((r) => r.stop()))
  })
  after(async () => {
    await h?.stop()
  })

  test('a projection run live, then rebuilt from scratch, has the same digest; rebuilt twice, too', async () => {
    await appendMany(12, 'a')
    const live: ProjectionProgress[] = []
    const counter = runner(streamCounter, 'proj_counter', { onProgress: (p) => p.phase === 'live' && live.push(p) })
    const totals = runner(categoryTotals, 'proj_totals')
    await Promise.all([counter.start(), totals.start()])
    await appendMany(20, 'b')
    await Promise.all([reachesEnd(counter), reachesEnd(totals)])
    // A live batch reports its progress after its acks, which may come after the checkpoint reached the end.
    await eventually(() => live.length > 0, 30_000, 'some events were applied from JetStream')
    await Promise.all([counter.stop(), totals.stop()])

    for (const projection of [streamCounter, categoryTotals]) {
      const liveDigest = await projectionDigest(h.projector, projection)
      const first = await rebuildProjection({ projection, sql: h.projector, batchSize: 3 })
      const second = await rebuildProjection({ projection, sql: h.projector })
      assert.equal(first.digest?.sha256, liveDigest.sha256, `${projection.name}: rebuilt equals live`)
      assert.equal(second.digest?.sha256, liveDigest.sha256, `${projection.name}: rebuilt twice, same digest`)
    }
    const [sum] = await h.db.admin<{ n: number }[]>`
      select sum((state->>'count')::int)::int as n from eventplane.projection_state where projection = ${streamCounter.name}`
    assert.equal(sum!.n, appended)
  })

  test('a runner started with rebuild drops its output, replays and goes live with the same digest', async () => {
    const before = await projectionDigest(h.projector, streamCounter)
    const progress: ProjectionProgress[] = []
    const r = runner(streamCounter, 'proj_counter', { rebuild: true, onProgress: (p) => progress.push(p) })
    await r.start()
    await reachesEnd(r)
    assert.equal((await projectionDigest(h.projector, streamCounter)).sha256, before.sha256)
    const rebuild = progress.filter((p) => p.phase === 'rebuild')
    assert.ok(
      rebuild.length > 0 && rebuild.at(-1)!.events === appended && rebuild.at(-1)!.total === appended,
      'progress reports done / total',
    )
    await appendMany(5, 'c')
    await reachesEnd(r)
    await r.stop()
  })

  test('a live batch is acknowledged only after the transaction with its output and checkpoint committed', async () => {
    // Each ack the runner sends, by the checkpoint of its event; inside every live commit (before its checkpoint
    // is written) none may be past the engine's last committed checkpoint: those are the batch being committed.
    const acked = new Map<string, Checkpoint>()
    const recordAcks = (s: LiveSource): LiveSource =>
      mapDeliveries(s, (d) =>
        overriding(d, {
          ack: () => {
            acked.set(d.event.event_id, checkpointOf(d.event))
            return d.ack()
          },
        }),
      )
    const early: string[] = []
    let liveCommits = 0
    const r: ProjectionRunner = runner(
      streamCounter,
      'proj_ack_after_commit',
      {
        beforeCheckpoint: (info) => {
          if (info.phase !== 'live') return
          liveCommits++
          for (const [id, c] of acked) if (compareCheckpoints(c, r.checkpoint) > 0) early.push(id)
        },
      },
      recordAcks,
    )
    await r.start()
    await appendMany(6, 'k')
    await reachesEnd(r)
    await r.stop()
    assert.ok(liveCommits > 0, 'events were applied live')
    assert.deepEqual(early, [], 'no delivery acknowledged before its commit')
  })

  test('a worker killed after its commit and before its ack applies nothing twice after restart', async () => {
    let redelivered = 0
    const countRedeliveries = (s: LiveSource): LiveSource =>
      watchedSource(s, (d) => {
        if (d.redelivered) redelivered++
      })
    let crashed = false
    const doomed = runner(streamCounter, 'proj_counter', {
      afterCommit: (info) => {
        if (info.phase === 'live' && !crashed) {
          crashed = true
          throw new Error('simulated crash between commit and ack')
        }
      },
    })
    await doomed.start()
    await appendMany(6, 'd')
    await assert.rejects(within(doomed.closed, 60_000, 'the worker crashes after a live commit'), /simulated crash/)

    const survivor = runner(streamCounter, 'proj_counter', {}, countRedeliveries)
    await survivor.start()
    await appendMany(6, 'e')
    await reachesEnd(survivor)
    await eventually(() => redelivered > 0, 15_000, 'the unacked deliveries come back')
    await survivor.stop()
    const [sum] = await h.db.admin<{ n: number }[]>`
      select sum((state->>'count')::int)::int as n from eventplane.projection_state where projection = ${streamCounter.name}`
    assert.equal(sum!.n, appended, 'every event counted exactly once')
    const live = await projectionDigest(h.projector, streamCounter)
    assert.equal((await rebuildProjection({ projection: streamCounter, sql: h.projector })).digest?.sha256, live.sha256)
  })

  test('a projection crashed between its output and its checkpoint, in catch-up and live, applies every event once after restart', async () => {
    const projections = [streamCounter, categoryTotals]
    const consumer = (p: Projection): string => `crash_${p.name}`
    for (const phase of ['catch-up', 'live'] as const) {
      // Work for the crashing commit: before start for catch-up (readable by it, or it would come live
      // and nothing would crash), after start for live.
      if (phase === 'catch-up') {
        await appendMany(6, `f${phase}`)
        await readableInGapSafeOrder()
      }
      const doomed = projections.map((p) => {
        let crashed = false
        const crash = (info: CommitInfo): void => {
          if (info.phase !== phase || crashed) return
          crashed = true
          throw new Error(`simulated crash before the ${phase} checkpoint`)
        }
        return runner(p, consumer(p), { beforeCheckpoint: crash })
      })
      const started = Promise.all(doomed.map((r) => r.start()))
      if (phase === 'live') {
        await within(started, 60_000, 'the runners doomed in live start')
        await appendMany(6, `f${phase}`)
      } else
        await assert.rejects(within(started, 60_000, 'a runner doomed in catch-up fails to start'), /simulated crash/)
      for (const r of doomed)
        await assert.rejects(
          within(r.closed, 60_000, `${r.engine.projection.name} crashes in ${phase}`),
          new RegExp(`simulated crash before the ${phase} checkpoint`),
        )
    }

    const survivors = projections.map((p) => runner(p, consumer(p)))
    await within(Promise.all(survivors.map((r) => r.start())), 60_000, 'the restarted runners start')
    await appendMany(4, 'g')
    await Promise.all(survivors.map(reachesEnd))
    await Promise.all(survivors.map((r) => r.stop()))
    const [counted] = await h.db.admin<{ n: number }[]>`
      select sum((state->>'count')::int)::int as n from eventplane.projection_state where projection = ${streamCounter.name}`
    assert.equal(counted!.n, appended, 'reducer output: every event counted exactly once')
    const [totals] = await h.db.admin<{ n: number }[]>`
      select sum(events)::int as n from eventplane_views.test_category_totals`
    assert.equal(totals!.n, appended, 'SQL output: every event counted exactly once')
    for (const projection of projections) {
      const live = await projectionDigest(h.projector, projection)
      const rebuilt = await rebuildProjection({ projection, sql: h.projector })
      assert.equal(rebuilt.digest?.sha256, live.sha256, `${projection.name}: equals a rebuild from PostgreSQL`)
    }
  })
})
