import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { Unavailable, isEventplaneError } from '@eventplane/core'
import { PgEventStore, ROLES, type Sql, logStatus, readProjectionStates } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { projectionDigest } from '../src/projection/digest.ts'
import { rebuildProjection } from '../src/projection/rebuild.ts'
import { ProjectionRunner } from '../src/projection/runner.ts'
import { defineReducerProjection, defineSqlProjection, type Projection } from '../src/projection/types.ts'
import { PROJECTOR_ROLE } from '../src/roles.ts'
import { categoryTotals, streamCounter } from './fixtures.ts'
import { eventually, factoryFor, stream } from './helpers.ts'

// Rebuilds write a shadow (a generation of reducer states, a schema of SQL tables) and swap it in at the
// end. The moment is controlled by the engine's hooks: `afterCommit` looks at what readers see after a
// shadow commit and then stops the rebuild; `beforeSwap` fails the swap transaction itself.

describe('rebuilds in a shadow: readers see the previous complete output until the swap', () => {
  let db: TestDatabase
  let projector: Sql
  let writer: PgEventStore
  let total = 0

  async function appendMany(n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const tenant = i % 3 === 0 ? 'globex' : 'acme'
      const s = stream(tenant, `d${total % 11}`, total % 2 ? 'deployment' : 'volume')
      await writer.append(s, [factoryFor(tenant).intent(s, 'scaled', { i: total })])
      total++
    }
    // The gap-safe read waits for older transactions anywhere in the cluster: let it see every event first.
    await eventually(async () => (await logStatus(db.admin)).waiting === 0, 120_000, 'every event readable')
  }
  /** What a reader of `categoryTotals` sees: its live table, as the reader role. */
  const liveTotals = async () =>
    db.admin<{ tenant_id: string; category: string; events: string }[]>`
      select tenant_id, category, events::text from eventplane_views.test_category_totals order by 1, 2`
  const shadowSchemas = async () =>
    (
      await db.admin<{ n: number }[]>`
      select count(*)::int as n from pg_namespace where nspname like 'eventplane\\_shadow\\_%'`
    )[0]!.n

  before(async () => {
    db = await createTestDatabase('ep_rebuild_shadow')
    projector = db.connect(PROJECTOR_ROLE, 4)
    writer = new PgEventStore(db.connect(ROLES.intentWriter, 2))
    await appendMany(30)
  })
  after(() => db.drop())

  for (const projection of [streamCounter, categoryTotals] as Projection[]) {
    test(`${projection.name}: stopped after a shadow commit, the old output serves; resumed, it equals a rebuild from scratch`, async () => {
      const first = await rebuildProjection({ projection, sql: projector })
      const oldTotals = await liveTotals().catch(() => [])
      const oldState = await readProjectionStates(db.connect(ROLES.reader, 1), streamCounter.name, 'acme')
      await appendMany(40)

      const stop = new AbortController()
      let commits = 0
      let seenDuring: string | undefined
      await assert.rejects(
        rebuildProjection({
          projection,
          sql: projector,
          batchSize: 5,
          commitEvery: 5,
          signal: stop.signal,
          afterCommit: async (info) => {
            if (info.phase !== 'rebuild' || ++commits !== 3) return
            seenDuring = (await projectionDigest(projector, projection)).sha256
            stop.abort(new Error('stopped by the test'))
          },
        }),
        /stopped by the test/,
      )
      assert.equal(commits, 3, 'stopped right after the third shadow commit')
      assert.equal(seenDuring, first.digest!.sha256, 'during the rebuild the digest is the previous output')
      assert.equal((await projectionDigest(projector, projection)).sha256, first.digest!.sha256, 'and after it')
      if (projection === categoryTotals) assert.deepEqual(await liveTotals(), oldTotals)
      else {
        const reader = db.connect(ROLES.reader, 1)
        assert.deepEqual(await readProjectionStates(reader, streamCounter.name, 'acme'), oldState)
      }
      const [row] = await db.admin<{ events: string }[]>`
        select events::text from eventplane.projection_rebuilds where projection = ${projection.name}`
      assert.equal(row?.events, '15', 'three commits of five events kept for the resume')

      const resumed = await rebuildProjection({ projection, sql: projector, batchSize: 7 })
      assert.equal(resumed.resumed, true)
      assert.equal(resumed.eventsBefore + resumed.events, total)
      const scratch = await rebuildProjection({ projection, sql: projector, restart: true })
      assert.equal(scratch.resumed, false)
      assert.equal(scratch.events, total)
      assert.equal(resumed.digest!.sha256, scratch.digest!.sha256, 'resumed equals from scratch')
      assert.notEqual(scratch.digest!.sha256, first.digest!.sha256, 'the new events are in the output')
      assert.equal(await shadowSchemas(), 0, 'no shadow schema is left behind')
    })
  }

  test('a swap that fails leaves the previous output live; the next replay only swaps', async () => {
    const before = await rebuildProjection({ projection: categoryTotals, sql: projector })
    await appendMany(5)
    await assert.rejects(
      rebuildProjection({
        projection: categoryTotals,
        sql: projector,
        beforeSwap: () => {
          throw new Error('swap refused by the test')
        },
      }),
      /swap refused by the test/,
    )
    assert.equal((await projectionDigest(projector, categoryTotals)).sha256, before.digest!.sha256)
    const done = await rebuildProjection({ projection: categoryTotals, sql: projector })
    assert.equal(done.resumed, true)
    assert.equal(done.events, 0, 'the rebuild had caught up; only the swap was left')
    assert.notEqual(done.digest!.sha256, before.digest!.sha256)
  })

  test('a runner of a bumped version serves the old output until its rebuild swaps in, then goes live', async () => {
    const v1 = await rebuildProjection({ projection: streamCounter, sql: projector })
    const v2 = defineReducerProjection({
      ...streamCounter,
      version: 2,
      initial: () => ({ count: 1000, types: [] as string[], lastVersion: 0 }),
    })
    let duringSwap: string | undefined
    const runner = new ProjectionRunner({
      projection: v2,
      sql: projector,
      batchSize: 4,
      commitEvery: 4,
      pollIntervalMs: 50,
      // Inside the swap transaction, before it commits: readers still get version 1's output.
      beforeSwap: async () => {
        duringSwap = (await projectionDigest(db.connect(PROJECTOR_ROLE, 1), streamCounter)).sha256
      },
    })
    try {
      await runner.start()
    } finally {
      await runner.stop()
    }
    assert.equal(duringSwap, v1.digest!.sha256, 'the previous version served until the swap committed')
    const [cp] = await db.admin<{ version: number }[]>`
      select version from eventplane.projection_checkpoints where projection = ${streamCounter.name}`
    assert.equal(cp!.version, 2)
    const after = await projectionDigest(projector, v2)
    assert.notEqual(after.sha256, v1.digest!.sha256, 'version 2 output is live')
    const scratch = await rebuildProjection({ projection: v2, sql: projector, restart: true })
    assert.equal(scratch.digest!.sha256, after.sha256)
  })

  test('a runner whose rebuild meets a passing failure resumes it: every event is committed into the shadow once', async () => {
    let failed = false
    let rebuilt = 0
    const runner = new ProjectionRunner({
      projection: streamCounter,
      sql: projector,
      rebuild: true,
      batchSize: 5,
      commitEvery: 5,
      pollIntervalMs: 20,
      retryDelayMs: 10,
      // The second shadow commit meets PostgreSQL gone for a moment (rolled back with its checkpoint).
      beforeCheckpoint: (info) => {
        if (info.phase !== 'rebuild' || failed || rebuilt < 5) return
        failed = true
        throw new Unavailable('store.unavailable', 'injected: the database went away')
      },
      afterCommit: (info) => {
        if (info.phase === 'rebuild') rebuilt += info.events
      },
    })
    try {
      await runner.start()
    } finally {
      await runner.stop()
    }
    assert.ok(failed, 'the rebuild met the failure')
    assert.equal(rebuilt, total, 'resumed from its last commit, not started over')
  })

  test('a SQL projection runner started with rebuild swaps in, then applies live events to the live tables without a resync', async () => {
    await rebuildProjection({ projection: categoryTotals, sql: projector })
    const warnings: string[] = []
    const logger = {
      debug() {},
      info() {},
      error() {},
      warn: (_o: object, msg?: string) => void warnings.push(msg ?? ''),
    }
    const runner = new ProjectionRunner({
      projection: categoryTotals,
      sql: projector,
      rebuild: true,
      pollIntervalMs: 20,
      logger,
    })
    try {
      await runner.start()
      await appendMany(3)
      const applied = async () => (await liveTotals()).reduce((n, r) => n + Number(r.events), 0)
      // A runner that stopped on a failure rejects `closed`: that failure, at once, rather than the wait's timeout.
      await Promise.race([
        eventually(async () => (await applied()) === total, 20_000, 'the new events in the live table'),
        runner.closed,
      ])
    } finally {
      await runner.stop()
    }
    await runner.closed
    assert.deepEqual(warnings, [], 'no resync after the swap')
    assert.equal(await shadowSchemas(), 0)
  })

  test('a SQL projection naming its tables with a schema is refused and its live table stays', async () => {
    const qualified = defineSqlProjection({
      ...categoryTotals,
      name: 'test_qualified',
      async setup(tx) {
        await tx`create table if not exists eventplane_views.test_qualified (n int)`
      },
      async apply() {},
      async drop(tx) {
        await tx`drop table if exists eventplane_views.test_qualified`
      },
      digestQuery: 'select n from eventplane_views.test_qualified order by n',
    })
    await projector.begin((tx) => qualified.setup(tx))
    await assert.rejects(rebuildProjection({ projection: qualified, sql: projector }), (e: unknown) =>
      isEventplaneError(e, 'runtime.projection_not_shadowable'),
    )
    const [t] = await db.admin`select to_regclass('eventplane_views.test_qualified') is not null as present`
    assert.equal(t!.present, true)
  })
})
