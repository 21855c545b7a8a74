import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import { type RecordedEvent, isEventplaneError } from '@eventplane/core'
import { EventplaneMetrics } from '@eventplane/bus-nats'
import { PgEventStore, ROLES, type Sql, logStatus } from '@eventplane/store-pg'
import { eventually, useTestDatabase } from '@eventplane/store-pg/testing'
import { projectionDigest } from '../src/projection/digest.ts'
import { ProjectionEngine } from '../src/projection/engine.ts'
import { ProjectionRunner } from '../src/projection/runner.ts'
import { type Projection, type ReducerProjection, defineReducerProjection } from '../src/projection/types.ts'
import { PROJECTOR_ROLE } from '../src/roles.ts'
import { categoryTotals, streamCounter } from './fixtures.ts'
import { factoryFor, stream } from './helpers.ts'

describe('the projection engine refuses what its output must never take', () => {
  const db = useTestDatabase('ep_engine_generation')
  let projector: Sql
  let writer: PgEventStore
  before(() => {
    projector = db.connect(PROJECTOR_ROLE, 4)
    writer = new PgEventStore(db.connect(ROLES.intentWriter, 2))
  })

  async function append(n: number, tenant = 'acme'): Promise<void> {
    const s = stream(tenant, 'web')
    const f = factoryFor(tenant)
    await writer.append(
      s,
      Array.from({ length: n }, (_, i) => f.intent(s, 'scaled', { i })),
    )
    // The gap-safe read waits for older transactions anywhere in the cluster: let it see every event first.
    await eventually(async () => (await logStatus(db.admin)).waiting === 0, 120_000, 'every event readable')
  }

  /** The live output: the state of acme's stream in the generation the checkpoint row names. */
  async function liveCount(): Promise<number | undefined> {
    const [row] = await db.admin<{ count: number }[]>`
      select (s.state->>'count')::int as count
        from eventplane.projection_state s join eventplane.projection_checkpoints c using (projection)
       where s.projection = ${streamCounter.name} and s.generation = c.generation and s.key = 'deployment/web'`
    return row?.count
  }

  test('cannot commit into its old generation, even at the very checkpoint the rebuild swapped in', async () => {
    await append(3)
    const old = new ProjectionEngine(streamCounter, projector)
    await old.init()
    await old.catchUp('catch-up')
    // A rebuild (another process: `evtctl replay`) swaps a new generation in, at the same checkpoint.
    const rebuilder = new ProjectionEngine(streamCounter, projector)
    await rebuilder.init()
    await rebuilder.rebuild()
    assert.notEqual(rebuilder.generation, old.generation)
    assert.deepEqual(rebuilder.checkpoint, old.checkpoint, 'the checkpoint alone does not show the swap')

    await append(1)
    await assert.rejects(old.catchUp('catch-up'), (e) => isEventplaneError(e, 'runtime.checkpoint_moved'))
    assert.equal(await liveCount(), 3, 'nothing was written past the live checkpoint')
    await old.resync()
    assert.equal(old.generation, rebuilder.generation)
    await old.catchUp('catch-up')
    assert.equal(await liveCount(), 4, 'the new event is in the live output, once')
  })

  test("a live batch carrying another tenant's event (a source wider than the filter) applies only the filter's tenant, without a resync", async () => {
    const acmeOnly = defineReducerProjection({ ...streamCounter, name: 'test_acme_only', filter: { tenant: 'acme' } })
    const engine = new ProjectionEngine(acmeOnly, projector)
    await engine.init()
    await engine.catchUp('catch-up')
    await append(1, 'globex')
    await append(1, 'acme')
    const batch: RecordedEvent[] = []
    for await (const page of new PgEventStore(db.admin).readAll({ from: engine.checkpoint, batchSize: 10 }))
      batch.push(...page)
    assert.deepEqual(
      batch.map((e) => e.tenant_id),
      ['globex', 'acme'],
    )
    assert.equal(await engine.applyLive(batch), 2)
    const states = await db.admin<{ tenant_id: string; count: number }[]>`
      select tenant_id, (state->>'count')::int as count from eventplane.projection_state
       where projection = ${acmeOnly.name} order by tenant_id`
    const [acme] = await db.admin<
      { n: number }[]
    >`select count(*)::int as n from eventplane.events where tenant_id = 'acme'`
    assert.deepEqual([...states], [{ tenant_id: 'acme', count: acme!.n }], 'no state of globex; every acme event once')
  })

  test('a rebuild stopped during its last commit does not swap; the next rebuild resumes and only swaps', async () => {
    const projection = defineReducerProjection({ ...streamCounter, name: 'test_stop_last_commit' })
    const live = new ProjectionEngine(projection, projector)
    await live.init()
    await live.catchUp('catch-up')
    const liveGeneration = async () =>
      (
        await db.admin<{ generation: number }[]>`
        select generation from eventplane.projection_checkpoints where projection = ${projection.name}`
      )[0]!.generation
    const stop = new AbortController()
    // One commit holds the whole (small) log: the stop arrives once there is nothing left to read.
    const stopped = new ProjectionEngine(projection, projector, {
      afterCommit: (info) => {
        if (info.phase === 'rebuild') stop.abort()
      },
    })
    await stopped.init()
    await assert.rejects(stopped.rebuild(stop.signal), (e: unknown) => (e as Error).name === 'AbortError')
    assert.equal(await liveGeneration(), live.generation, 'the previous output is still the live one')
    const next = await new ProjectionEngine(projection, projector).rebuild()
    assert.deepEqual([next.resumed, next.events], [true, 0])
    assert.equal(await liveGeneration(), next.generation)
  })

  /** acme's web stream in `projection`'s live output (the generation its checkpoint row names). */
  async function acmeWebCount(projection: ReducerProjection<unknown>): Promise<number | undefined> {
    const [row] = await db.admin<{ count: number }[]>`
      select (s.state->>'count')::int as count
        from eventplane.projection_state s join eventplane.projection_checkpoints c using (projection)
       where s.projection = ${projection.name} and s.generation = c.generation
         and s.tenant_id = 'acme' and s.key = 'deployment/web'`
    return row?.count
  }

  async function acmeWebEvents(): Promise<number> {
    const [row] = await db.admin<{ n: number }[]>`select count(*)::int as n from eventplane.events
       where tenant_id = 'acme' and category = 'deployment' and stream_id = 'web'`
    return row!.n
  }

  test('a second engine of the same projection, behind the stored checkpoint, cannot commit: no event counted twice', async () => {
    const projection = defineReducerProjection({ ...streamCounter, name: 'test_two_engines' })
    // Two processes running the same projection (a second replica, a restart overlapping the old one).
    const first = new ProjectionEngine(projection, projector)
    const second = new ProjectionEngine(projection, projector)
    await first.init()
    await second.init()
    await append(2)
    await first.catchUp('catch-up')
    const events = await acmeWebEvents()
    assert.equal(await acmeWebCount(projection), events)
    await assert.rejects(second.catchUp('catch-up'), (e) => isEventplaneError(e, 'runtime.checkpoint_moved'))
    assert.equal(await acmeWebCount(projection), events, 'the behind engine wrote nothing')
    await second.resync()
    await second.catchUp('catch-up')
    assert.equal(await acmeWebCount(projection), events, 'resynced, it applies nothing twice')
  })

  test('a runner whose generation a rebuild swapped out resyncs by itself and goes on in the new one', async () => {
    const projection = defineReducerProjection({ ...streamCounter, name: 'test_runner_swapped' })
    const runner = new ProjectionRunner({ projection, sql: projector, pollIntervalMs: 20, retryDelayMs: 20 })
    try {
      await runner.start()
      const before = runner.engine.generation
      // `evtctl replay` in another process: a new generation swapped in under the running runner.
      const rebuilder = new ProjectionEngine(projection, projector)
      await rebuilder.init()
      await rebuilder.rebuild()
      assert.notEqual(rebuilder.generation, before)
      await append(1)
      const events = await acmeWebEvents()
      await eventually(
        async () => runner.engine.generation === rebuilder.generation && (await acmeWebCount(projection)) === events,
        20_000,
        'the runner in the new generation with the new event applied once',
      )
    } finally {
      await runner.stop()
    }
  })

  test("the digest covers each state's tenant: the same state under another tenant is another output", async () => {
    const projection = defineReducerProjection({ ...streamCounter, name: 'test_digest_tenant' })
    const engine = new ProjectionEngine(projection, projector)
    await engine.init()
    await engine.catchUp('catch-up')
    const before = await projectionDigest(projector, projection)
    // An output that put acme's state under another tenant (one that sorts where acme does, so the rows keep
    // their order): what a rebuild compared by digest must not pass.
    await db.admin`update eventplane.projection_state set tenant_id = 'acme_moved'
       where projection = ${projection.name} and tenant_id = 'acme'`
    const after = await projectionDigest(projector, projection)
    assert.equal(after.rows, before.rows)
    assert.notEqual(after.sha256, before.sha256)
  })

  test("the digest covers each state's key: the same states under other keys are another output", async () => {
    await append(1)
    const projection = defineReducerProjection({ ...streamCounter, name: 'test_digest_key' })
    const engine = new ProjectionEngine(projection, projector)
    await engine.init()
    await engine.catchUp('catch-up')
    const before = await projectionDigest(projector, projection)
    // Every tenant has the one key deployment/web here: renamed, the rows keep their order.
    await db.admin`update eventplane.projection_state set key = 'deployment/wex' where projection = ${projection.name}`
    const after = await projectionDigest(projector, projection)
    assert.equal(after.rows, before.rows)
    assert.notEqual(after.sha256, before.sha256)
  })

  test('a rebuild that fails mid-read leaves no session of the projector busy: its cursor is closed', async () => {
    await append(20)
    let applied = 0
    const projection = defineReducerProjection({
      ...streamCounter,
      name: 'test_cursor_closed',
      apply: (s, e: RecordedEvent) => {
        if (++applied === 3) throw new Error('reducer bug')
        return streamCounter.apply(s, e)
      },
    })
    // Batches of two: the second fails while the cursor (one statement over the log) still has rows to give.
    const engine = new ProjectionEngine(projection, projector, { batchSize: 2 })
    await engine.init()
    await assert.rejects(engine.rebuild(), (e: unknown) => isEventplaneError(e, 'runtime.handler_failed'))
    const busy = await db.admin<{ state: string; query: string }[]>`
      select state, left(query, 60) as query from pg_stat_activity
       where datname = current_database() and usename = ${PROJECTOR_ROLE} and state <> 'idle'`
    assert.deepEqual([...busy], [], 'the rebuild stream let go of its cursor and connection')
  })

  test("a runner's gauges: not live until caught up; a tenant's projection lags only by that tenant's events", async () => {
    const projection = defineReducerProjection({ ...streamCounter, name: 'test_gauges', filter: { tenant: 'acme' } })
    const metrics = new EventplaneMetrics()
    const gauge = async (name: string): Promise<number | undefined> => {
      const series = `eventplane_projection_${name}{projection="test_gauges"} `
      const line = (await metrics.render()).split('\n').find((l) => l.startsWith(series))
      return line === undefined ? undefined : Number(line.slice(series.length))
    }
    const runner = new ProjectionRunner({ projection, sql: projector, pollIntervalMs: 20, metrics })
    try {
      assert.equal(await gauge('live'), 0, 'not started: not live')
      await runner.start()
      await append(2, 'globex')
      assert.deepEqual([await gauge('live'), await gauge('lag_events')], [1, 0], "globex's events are no lag of acme's")
    } finally {
      await runner.stop()
    }
  })

  test("a tenant's projection rebuilt reports its progress against that tenant's events: the last total is what it read", async () => {
    await append(2, 'globex')
    await append(3, 'acme')
    const acmeOnly = defineReducerProjection({
      ...streamCounter,
      name: 'test_progress_tenant',
      filter: { tenant: 'acme' },
    })
    const reports: { events: number; total?: number }[] = []
    const engine = new ProjectionEngine(acmeOnly, projector, { onProgress: (p) => reports.push(p) })
    await engine.init()
    const { events } = await engine.rebuild()
    const [acme] = await db.admin<
      { n: number }[]
    >`select count(*)::int as n from eventplane.events where tenant_id = 'acme'`
    assert.equal(events, acme!.n, "a rebuild of a tenant's projection reads that tenant's events")
    assert.deepEqual(reports.at(-1) && { events: reports.at(-1)!.events, total: reports.at(-1)!.total }, {
      events,
      total: events,
    })
  })

  for (const projection of [defineReducerProjection({ ...streamCounter, name: 'test_discarded' }), categoryTotals]) {
    test(`${projection.name}: a restarted rebuild first deletes what the rebuild it throws away wrote`, async () => {
      await append(4)
      /** A rebuild stopped right after its first shadow commit (batches of two): its output stays behind. */
      const interrupted = async (restart: boolean): Promise<number> => {
        const stop = new AbortController()
        const engine = new ProjectionEngine(projection as Projection, projector, {
          batchSize: 2,
          commitEvery: 2,
          afterCommit: (info) => {
            if (info.phase === 'rebuild') stop.abort()
          },
        })
        await engine.init()
        await assert.rejects(engine.rebuild(stop.signal, restart), (e: unknown) => (e as Error).name === 'AbortError')
        return engine.generation
      }
      const thrownAway = await interrupted(false)
      const current = await interrupted(true)
      assert.notEqual(current, thrownAway)
      // Left behind: reducer states of another generation than the live one and the rebuild's, shadow schemas of
      // another generation than the rebuild's. Nothing swaps here, so only the restart's own clean-up removes them.
      const [left] = await db.admin<{ states: number; schemas: number }[]>`
        select (select count(*)::int from eventplane.projection_state s
                 where s.projection = ${projection.name} and s.generation not in (${current},
                   (select generation from eventplane.projection_checkpoints where projection = ${projection.name}))
               ) as states,
               (select count(*)::int from pg_namespace
                 where nspname like 'eventplane\\_shadow\\_' || left(md5(${projection.name}), 16) || '\\_%'
                   and nspname not like ${`%\\_${current}`}) as schemas`
      assert.deepEqual({ ...left }, { states: 0, schemas: 0 }, 'nothing of the thrown-away rebuild is left')
    })
  }

  test('a rebuild of a projection never run before (no init) swaps its output in', async () => {
    // Mutation audit 2026-12-02 (mutrand): beginRebuild creating the checkpoint row itself was unseen.
    const never = defineReducerProjection({
      name: 'test_never_run',
      version: 1,
      initial: () => ({ count: 0 }),
      apply: (s: { count: number }) => ({ count: s.count + 1 }),
      key: (e) => `${e.stream.category}/${e.stream.id}`,
    })
    await append(2, 'globex')
    const engine = new ProjectionEngine(never, projector)
    await engine.rebuild()
    const [row] = await db.admin<{ count: number; live: boolean }[]>`
      select (s.state->>'count')::int as count, s.generation = c.generation as live
        from eventplane.projection_state s join eventplane.projection_checkpoints c using (projection)
       where s.projection = ${never.name} and s.tenant_id = 'globex' and s.key = 'deployment/web'`
    const [logged] = await db.admin<{ n: number }[]>`
      select count(*)::int as n from eventplane.events
       where tenant_id = 'globex' and category = 'deployment' and stream_id = 'web'`
    assert.ok(logged!.n >= 2)
    assert.deepEqual({ ...row }, { count: logged!.n, live: true })
  })
})
