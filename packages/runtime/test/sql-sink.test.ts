import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { PgEventStore, ROLES, type Sql, logStatus } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { ProjectionEngine } from '../src/projection/engine.ts'
import { ProjectionRunner } from '../src/projection/runner.ts'
import { type SqlProjection, defineSqlProjection } from '../src/projection/types.ts'
import { PROJECTOR_ROLE } from '../src/roles.ts'
import { categoryTotals } from './fixtures.ts'
import { eventually, factoryFor, stream } from './helpers.ts'

/** categoryTotals under another name, writing its own table. */
function totals(name: string, extra: Partial<SqlProjection> = {}): SqlProjection {
  const table = (sql: string) => sql.replaceAll('test_category_totals', name)
  return defineSqlProjection({
    name,
    version: 1,
    setup: (tx) =>
      tx
        .unsafe(
          table(
            'create table if not exists test_category_totals (tenant_id text not null, category text not null, events bigint not null, last_type text not null, primary key (tenant_id, category))',
          ),
        )
        .then(() => {}),
    apply: (tx, e) =>
      tx
        .unsafe(
          table(`insert into test_category_totals as t (tenant_id, category, events, last_type) values ($1, $2, 1, $3)
                 on conflict (tenant_id, category) do update set events = t.events + 1, last_type = excluded.last_type`),
          [e.tenant_id, e.stream.category, e.type],
        )
        .then(() => {}),
    drop: (tx) => tx.unsafe(table('drop table if exists test_category_totals')).then(() => {}),
    digestQuery: table(categoryTotals.digestQuery),
    ...extra,
  })
}

describe('SQL sink: what is applied is what the filter and the checkpoint say', () => {
  let db: TestDatabase
  let projector: Sql
  let writer: PgEventStore

  before(async () => {
    db = await createTestDatabase('ep_sql_sink')
    projector = db.connect(PROJECTOR_ROLE, 4)
    writer = new PgEventStore(db.connect(ROLES.intentWriter, 2))
  })
  after(async () => {
    await db.drop()
  })

  async function append(category: string, n: number): Promise<void> {
    const s = stream('acme', 'web', category)
    const f = factoryFor('acme')
    await writer.append(
      s,
      Array.from({ length: n }, () => f.intent(s, 'scaled', {})),
    )
  }

  async function rows(table: string): Promise<Record<string, number>> {
    const r = await db.admin<{ category: string; events: number }[]>`
      select category, events::int from ${db.admin(`eventplane_views.${table}`)} order by category`
    return Object.fromEntries(r.map((x) => [x.category, x.events]))
  }

  test("a passing PostgreSQL failure in a SQL projection's apply (SQLSTATE 40001) is retried, not fatal; each event applied once", async () => {
    await append('retried', 3)
    let failed = 0
    const base = totals('test_sql_retried', { filter: { categories: ['retried'] } })
    const projection = defineSqlProjection({
      ...base,
      async apply(tx, e) {
        // The first time the second event is applied, PostgreSQL reports a serialization failure.
        if (e.stream_version === 2 && failed++ === 0)
          await tx`do $$ begin raise exception 'injected' using errcode = '40001'; end $$`
        await base.apply(tx, e)
      },
    })
    const runner = new ProjectionRunner({ projection, sql: projector, pollIntervalMs: 50, retryDelayMs: 10 })
    try {
      await runner.start()
    } finally {
      await runner.stop()
    }
    assert.equal(failed, 2, 'the second event applied again after the failure')
    assert.deepEqual(await rows('test_sql_retried'), { retried: 3 })
  })

  test('a filtered SQL projection applies only the events its filter names', async () => {
    await append('wanted', 2)
    await append('unwanted', 3)
    const projection = totals('test_sql_filtered', { filter: { categories: ['wanted'] } })
    const engine = new ProjectionEngine(projection, projector)
    await engine.init()
    await engine.catchUp('catch-up')
    assert.deepEqual(await rows('test_sql_filtered'), { wanted: 2 })
  })

  test('a commit that fails while the next batch is staged leaves nothing staged: resynced, each event applied once', async () => {
    await append('staged', 4)
    let commits = 0
    const projection = totals('test_sql_staged', { filter: { categories: ['staged'] } })
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
    assert.deepEqual(await rows('test_sql_staged'), {}, 'nothing committed')
    await engine.resync()
    await engine.catchUp('catch-up')
    assert.deepEqual(await rows('test_sql_staged'), { staged: 4 })
  })

  test("a SQL projection's apply that throws stops the runner with runtime.handler_failed naming the event", async () => {
    await append('broken', 2)
    // The gap-safe read waits for older transactions anywhere in the cluster: the first catch-up must see both.
    await eventually(async () => (await logStatus(db.admin)).waiting === 0, 120_000, 'every event readable')
    const [, second] = await writer.readStreamToArray(stream('acme', 'web', 'broken'))
    assert.ok(second)
    const base = totals('test_sql_throws', { filter: { categories: ['broken'] } })
    const projection = defineSqlProjection({
      ...base,
      async apply(tx, e) {
        if (e.event_id === second.event_id) throw new Error('apply bug')
        await base.apply(tx, e)
      },
    })
    const runner = new ProjectionRunner({ projection, sql: projector, pollIntervalMs: 50 })
    await assert.rejects(runner.start(), (e: unknown) => {
      assert.ok(isEventplaneError(e, 'runtime.handler_failed'), String(e))
      assert.equal(e.details.event_id, second.event_id)
      assert.equal((e.cause as Error).message, 'apply bug')
      return true
    })
    await runner.stop()
  })
})
