import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { Type } from '@sinclair/typebox'
import { EventFactory, type RecordedEvent, SchemaRegistry, isEventplaneError } from '@eventplane/core'
import { PgEventStore, ROLES, type Sql, logStatus } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { deferred } from '../src/deferred.ts'
import { ProjectionEngine } from '../src/projection/engine.ts'
import { ProjectionRunner } from '../src/projection/runner.ts'
import { defineReducerProjection } from '../src/projection/types.ts'
import { PROJECTOR_ROLE } from '../src/roles.ts'
import { registerResourceSchemas, setStatus } from '../src/mutate.ts'
import { resourceStateProjection } from '../src/resource-state.ts'
import { streamCounter } from './fixtures.ts'
import { eventually, factoryFor, stream, within } from './helpers.ts'

describe('reducer sink: what a commit writes is what its checkpoint covers', () => {
  let db: TestDatabase
  let projector: Sql
  let writer: PgEventStore

  before(async () => {
    db = await createTestDatabase('ep_reducer_sink')
    projector = db.connect(PROJECTOR_ROLE, 4)
    writer = new PgEventStore(db.connect(ROLES.intentWriter, 2))
  })
  after(async () => {
    await db.drop()
  })

  async function append(category: string, id: string, n: number): Promise<void> {
    const s = stream('acme', id, category)
    const f = factoryFor('acme')
    await writer.append(
      s,
      Array.from({ length: n }, (_, i) => f.intent(s, 'scaled', { i })),
    )
  }

  /** The gap-safe read waits for older transactions anywhere in the cluster: until every event is readable. */
  const readable = () =>
    eventually(async () => (await logStatus(db.admin)).waiting === 0, 120_000, 'every event readable')

  async function counts(projection: string): Promise<Record<string, number>> {
    const rows = await db.admin<{ key: string; count: number }[]>`
      select s.key, (s.state->>'count')::int as count
        from eventplane.projection_state s join eventplane.projection_checkpoints c using (projection)
       where s.projection = ${projection} and s.generation = c.generation order by s.key`
    return Object.fromEntries(rows.map((r) => [r.key, r.count]))
  }

  test('a commit held on its checkpoint lock writes only the state of the events it covers, never what was staged after', async () => {
    const projection = defineReducerProjection({
      ...streamCounter,
      name: 'test_sink_held_commit',
      filter: { categories: ['held'] },
    })
    await append('held', 'held', 4)
    const stagedLast = deferred<void>()
    const watched = defineReducerProjection({
      ...projection,
      apply: (s, e: RecordedEvent) => {
        if (e.stream_version === 4) stagedLast.resolve()
        return projection.apply(s, e)
      },
    })
    let commits = 0
    // Commits after each batch of two (one dirty state); the second commit crashes before its checkpoint.
    const engine = new ProjectionEngine(watched, projector, {
      batchSize: 2,
      maxPending: 1,
      beforeCheckpoint: () => {
        if (++commits === 2) throw new Error('crash before the second checkpoint')
      },
    })
    await engine.init()
    const locked = deferred<void>()
    const release = deferred<void>()
    // Holds the checkpoint row: the first commit waits on it while the next batch (events 3, 4) is staged.
    const holder = db.admin.begin(async (tx) => {
      await tx`select 1 from eventplane.projection_checkpoints where projection = ${watched.name} for update`
      locked.resolve()
      await release.promise
    })
    await locked.promise
    const catchUp = engine.catchUp('catch-up')
    catchUp.catch(() => {})
    await within(stagedLast.promise, 20_000, 'events 3 and 4 staged while the first commit waits')
    release.resolve()
    await holder
    await assert.rejects(catchUp, /crash before the second checkpoint/)
    assert.deepEqual(await counts(watched.name), { 'held/held': 2 }, 'the first commit covers events 1 and 2')

    const restarted = new ProjectionEngine(watched, projector)
    await restarted.init()
    await restarted.catchUp('catch-up')
    assert.deepEqual(await counts(watched.name), { 'held/held': 4 }, 'every event applied once after restart')
  })

  test('a commit that fails while the next batch is staged leaves nothing behind: resynced, the engine applies each event once', async () => {
    const projection = defineReducerProjection({
      ...streamCounter,
      name: 'test_sink_failed_commit',
      filter: { categories: ['failed'] },
    })
    await append('failed', 'failed', 4)
    let commits = 0
    // Batches of two, a commit after each: the first fails in the background while events 3 and 4 are staged.
    const engine = new ProjectionEngine(projection, projector, {
      batchSize: 2,
      maxPending: 1,
      beforeCheckpoint: () => {
        if (++commits === 1) throw new Error('crash before the first checkpoint')
      },
    })
    await engine.init()
    await assert.rejects(engine.catchUp('catch-up'), /crash before the first checkpoint/)
    assert.deepEqual(await counts(projection.name), {}, 'nothing committed')
    await engine.resync()
    await engine.catchUp('catch-up')
    assert.deepEqual(await counts(projection.name), { 'failed/failed': 4 })
  })

  test('a staging failure while a commit is in flight rejects only once that commit settled: nothing lands after catch-up gave up', async () => {
    const projection = defineReducerProjection({
      ...streamCounter,
      name: 'test_sink_inflight',
      filter: { categories: ['inflight'] },
    })
    let failOn: string | undefined
    const release = deferred<void>()
    const watched = defineReducerProjection({
      ...projection,
      apply: (s, e: RecordedEvent) => {
        if (e.event_id === failOn) {
          failOn = undefined
          release.resolve() // the commit in flight may go on now; this stage fails at once
          throw new Error('reducer bug')
        }
        return projection.apply(s, e)
      },
    })
    let commits = 0
    let armed = false
    // Two dirty states commit; one does not (commitEvery out of reach): the first batch (a, b) commits in the
    // background and waits in its transaction until the third batch's stage fails.
    const engine = new ProjectionEngine(watched, projector, {
      batchSize: 2,
      maxPending: 2,
      commitEvery: 1_000_000,
      beforeCheckpoint: () => (armed ? release.promise : undefined),
      afterCommit: () => {
        if (armed) commits++
      },
    })
    await engine.init()
    await engine.catchUp('catch-up') // past the other tests' events: the next catch-up reads ours alone
    await append('inflight', 'a', 1)
    await append('inflight', 'b', 1)
    await append('inflight', 'a', 3)
    failOn = (await writer.readStreamToArray(stream('acme', 'a', 'inflight'))).at(-1)!.event_id
    await readable() // one catch-up reads the three batches
    armed = true
    const committedAtReject = await engine.catchUp('catch-up').then(
      () => 'resolved',
      (e: unknown) => (isEventplaneError(e, 'runtime.handler_failed') ? commits : String(e)),
    )
    assert.equal(committedAtReject, 1, 'the commit in flight had committed when catch-up rejected')
    await engine.resync()
    await engine.catchUp('catch-up')
    assert.deepEqual(await counts(watched.name), { 'inflight/a': 4, 'inflight/b': 1 }, 'every event applied once')
  })

  test('a rebuild whose cache is smaller than its keys reloads an evicted state instead of starting it afresh', async () => {
    const projection = defineReducerProjection({
      ...streamCounter,
      name: 'test_sink_evicted',
      filter: { categories: ['evict'] },
    })
    for (const id of ['a', 'b', 'c', 'a', 'b']) await append('evict', id, 1)
    const live = new ProjectionEngine(projection, projector)
    await live.init()
    await live.catchUp('catch-up')
    const expected = { 'evict/a': 2, 'evict/b': 2, 'evict/c': 1 }
    assert.deepEqual(await counts(projection.name), expected)
    // One state cached, a commit per event: each key is evicted before it comes again.
    const rebuilt = new ProjectionEngine(projection, projector, { cacheSize: 1, batchSize: 1, maxPending: 1 })
    await rebuilt.rebuild()
    assert.deepEqual(await counts(projection.name), expected)
  })

  test('a reducer that throws stops the runner with runtime.handler_failed naming the event', async () => {
    await append('boom', 'boom', 2)
    const [, second] = await writer.readStreamToArray(stream('acme', 'boom', 'boom'))
    assert.ok(second)
    const failing = defineReducerProjection({
      ...streamCounter,
      name: 'test_sink_throws',
      filter: { categories: ['boom'] },
      apply: (s, e: RecordedEvent) => {
        if (e.event_id === second.event_id) throw new Error('reducer bug')
        return streamCounter.apply(s, e)
      },
    })
    const runner = new ProjectionRunner({ projection: failing, sql: projector, pollIntervalMs: 50 })
    await assert.rejects(runner.start(), (e: unknown) => {
      assert.ok(isEventplaneError(e, 'runtime.handler_failed'), String(e))
      assert.equal(e.details.event_id, second.event_id)
      assert.equal((e.cause as Error).message, 'reducer bug')
      return true
    })
    await runner.stop()
  })

  test('a projection filtered on kinds takes only those kinds: a fact, not the intent on its stream', async () => {
    const facts = new PgEventStore(db.connect(ROLES.factWriter, 1))
    const f = EventFactory.forTenant('acme', {
      causedBy: 'controller:test',
      registry: new SchemaRegistry().register('scheduled', 1, Type.Object({})),
    })
    const s = stream('acme', 'k1', 'kinds')
    await writer.append(s, [factoryFor('acme').intent(s, 'scaled', {})])
    await facts.append(s, [f.fact(s, 'scheduled', {})])
    await readable()
    const projection = defineReducerProjection({
      ...streamCounter,
      name: 'test_sink_kinds',
      filter: { kinds: ['fact'], categories: ['kinds'] },
    })
    const engine = new ProjectionEngine(projection, projector)
    await engine.init()
    await engine.catchUp('catch-up')
    assert.deepEqual(await counts(projection.name), { 'kinds/k1': 1 })
  })

  test('an event whose key is null changes no state', async () => {
    await append('nullkey', 'kept', 2)
    await append('nullkey', 'skipped', 3)
    await readable()
    const projection = defineReducerProjection({
      ...streamCounter,
      name: 'test_sink_null_key',
      filter: { categories: ['nullkey'] },
      key: (e: RecordedEvent) => (e.stream.id === 'skipped' ? null : streamCounter.key(e)),
    })
    const engine = new ProjectionEngine(projection, projector)
    await engine.init()
    await engine.catchUp('catch-up')
    assert.deepEqual(await counts(projection.name), { 'nullkey/kept': 2 })
  })

  test('a key function that throws stops the runner with runtime.handler_failed naming the event', async () => {
    await append('badkey', 'badkey', 2)
    await readable()
    const [, second] = await writer.readStreamToArray(stream('acme', 'badkey', 'badkey'))
    assert.ok(second)
    const failing = defineReducerProjection({
      ...streamCounter,
      name: 'test_sink_key_throws',
      filter: { categories: ['badkey'] },
      key: (e: RecordedEvent) => {
        if (e.event_id === second.event_id) throw new Error('key bug')
        return streamCounter.key(e)
      },
    })
    const runner = new ProjectionRunner({ projection: failing, sql: projector, pollIntervalMs: 50 })
    await assert.rejects(runner.start(), (e: unknown) => {
      assert.ok(isEventplaneError(e, 'runtime.handler_failed'), String(e))
      assert.equal(e.details.event_id, second.event_id)
      assert.equal((e.cause as Error).message, 'key bug')
      return true
    })
    await runner.stop()
  })

  test('the resource state projection holds a state only for streams with a mutate fact', async () => {
    const facts = new PgEventStore(db.connect(ROLES.factWriter, 1))
    const f = EventFactory.forTenant('acme', {
      causedBy: 'controller:test',
      registry: registerResourceSchemas(new SchemaRegistry()).register('scheduled', 1, Type.Object({})),
    })
    const web = stream('acme', 'web', 'resource')
    const db1 = stream('acme', 'db', 'resource')
    await facts.append(web, [setStatus(f, web, 'running')])
    await facts.append(db1, [f.fact(db1, 'scheduled', {})])
    const engine = new ProjectionEngine(resourceStateProjection, projector)
    await engine.init()
    await engine.catchUp('catch-up')
    const keys = await db.admin<{ key: string }[]>`
      select key from eventplane.projection_state where projection = ${resourceStateProjection.name} order by key`
    assert.deepEqual(
      keys.map((k) => k.key),
      ['resource/web'],
    )
  })
})
