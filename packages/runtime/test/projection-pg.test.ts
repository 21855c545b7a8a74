import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { after, before, describe, test } from 'node:test'
import { MIGRATIONS_DIR, PgEventStore, ROLES, type Sql, logStatus, withTenant } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { projectionDigest } from '../src/projection/digest.ts'
import { rebuildProjection } from '../src/projection/rebuild.ts'
import { ProjectionRunner } from '../src/projection/runner.ts'
import { defineReducerProjection } from '../src/projection/types.ts'
import { PROJECTOR_ROLE } from '../src/roles.ts'
import { categoryTotals, streamCounter } from './fixtures.ts'
import { eventually, factoryFor, stream } from './helpers.ts'

describe('projections from PostgreSQL alone (polling)', () => {
  let db: TestDatabase
  let projector: Sql
  let writer: PgEventStore
  let total = 0
  const runners: ProjectionRunner[] = []

  async function appendMany(n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const tenant = i % 3 === 0 ? 'globex' : 'acme'
      const s = stream(tenant, `d${i % 7}`, i % 2 ? 'deployment' : 'volume')
      await writer.append(s, [factoryFor(tenant).intent(s, i % 5 ? 'scaled' : 'created', { i })])
      total++
    }
  }

  before(async () => {
    db = await createTestDatabase('ep_proj_pg')
    projector = db.connect(PROJECTOR_ROLE, 4)
    writer = new PgEventStore(db.connect(ROLES.intentWriter, 2))
  })
  after(async () => {
    await Promise.all(runners.map((r) => r.stop()))
    await db.drop()
  })

  test('a live projection and its rebuilds from scratch have identical digests', async () => {
    await appendMany(40)
    const runner = new ProjectionRunner({
      projection: streamCounter,
      sql: projector,
      batchSize: 7,
      maxPending: 3,
      cacheSize: 2,
      pollIntervalMs: 50,
    })
    const sqlRunner = new ProjectionRunner({
      projection: categoryTotals,
      sql: projector,
      batchSize: 5,
      pollIntervalMs: 50,
    })
    runners.push(runner, sqlRunner)
    await Promise.all([runner.start(), sqlRunner.start()])
    await appendMany(25)
    const head = async () => (await logStatus(db.admin)).headPosition ?? 0n
    const last = await head()
    await eventually(
      () => runner.checkpoint.position >= last && sqlRunner.checkpoint.position >= last,
      60_000,
      'runners reach the head',
    )
    await Promise.all([runner.stop(), sqlRunner.stop()])

    for (const projection of [streamCounter, categoryTotals]) {
      const live = await projectionDigest(projector, projection)
      const first = await rebuildProjection({ projection, sql: projector, batchSize: 11 })
      const second = await rebuildProjection({ projection, sql: projector, batchSize: 1000 })
      assert.equal(first.events, total, projection.name)
      assert.equal(first.digest?.sha256, live.sha256, `${projection.name}: rebuild equals live`)
      assert.equal(second.digest?.sha256, live.sha256, `${projection.name}: rebuilt twice, same digest`)
      assert.ok(live.rows > 0)
    }
    const counts = await db.admin<{ n: number }[]>`
      select sum((state->>'count')::int)::int as n from eventplane.projection_state where projection = ${streamCounter.name}`
    assert.equal(counts[0]!.n, total, 'every event applied exactly once')
  })

  test('the digest depends on the state: one value changed in one row changes it; same keys, other states differ', async () => {
    await appendMany(10)
    // Twins of streamCounter under other names: the same events, so the same keys; the offset one starts elsewhere.
    const counter = defineReducerProjection({ ...streamCounter, name: 'test_digest_counter' })
    const offset = defineReducerProjection({
      ...streamCounter,
      name: 'test_digest_offset',
      initial: () => ({ count: 100, types: [] as string[], lastVersion: 0 }),
    })
    const [a, b, t] = await Promise.all(
      [counter, offset, categoryTotals].map(
        async (projection) => (await rebuildProjection({ projection, sql: projector })).digest!,
      ),
    )
    assert.ok(a!.rows > 1 && a!.rows === b!.rows, 'the twins have the same keys')
    assert.notEqual(a!.sha256, b!.sha256, 'same keys, different states: different digests')

    const [row] = await projector<{ tenant_id: string; key: string }[]>`
      select tenant_id, key from eventplane.projection_state where projection = ${counter.name}
       order by tenant_id collate "C", key collate "C" limit 1`
    const bump = (by: number) => projector`
      update eventplane.projection_state set state = jsonb_set(state, '{count}', to_jsonb((state->>'count')::int + ${by}))
       where projection = ${counter.name} and tenant_id = ${row!.tenant_id} and key = ${row!.key}`
    assert.equal((await bump(1)).count, 1, 'one value in one row changed')
    assert.notEqual(
      (await projectionDigest(projector, counter)).sha256,
      a!.sha256,
      'one changed value changes the digest',
    )
    await bump(-1)
    assert.equal((await projectionDigest(projector, counter)).sha256, a!.sha256, 'restored, the digest is back')

    const changed = await projector`update eventplane_views.test_category_totals set last_type = 'changed'
                     where (tenant_id, category) = ('acme', 'deployment')`
    assert.equal(changed.count, 1)
    assert.notEqual((await projectionDigest(projector, categoryTotals)).sha256, t!.sha256, 'a SQL output value, too')
    await rebuildProjection({ projection: categoryTotals, sql: projector })
  })

  test('projection state is tenant-isolated by RLS; the projector is neither superuser nor RLS-exempt', async () => {
    const reader = db.connect(ROLES.reader, 1)
    const seen = await withTenant(
      reader,
      'globex',
      (tx) => tx<{ tenant_id: string }[]>`select distinct tenant_id from eventplane.projection_state`,
    )
    assert.deepEqual(
      seen.map((r) => r.tenant_id),
      ['globex'],
    )
    assert.equal(
      Number((await reader`select count(*) from eventplane.projection_state`)[0]!.count),
      0,
      'no tenant set, no rows',
    )
    const [role] =
      await db.admin`select rolsuper, rolbypassrls, rolcanlogin from pg_roles where rolname = ${PROJECTOR_ROLE}`
    assert.deepEqual([role!.rolsuper, role!.rolbypassrls, role!.rolcanlogin], [false, false, true])
    const [t] =
      await db.admin`select relrowsecurity, relforcerowsecurity from pg_class where oid = 'eventplane.projection_state'::regclass`
    assert.deepEqual([t!.relrowsecurity, t!.relforcerowsecurity], [true, true])
    await assert.rejects(reader`insert into eventplane.projection_state values ('x', 'globex', 'k', '{}')`, {
      code: '42501',
    })
  })

  test('the projections migration applies again without error', async () => {
    const text = await readFile(`${MIGRATIONS_DIR}/0003_projections.sql`, 'utf8')
    await db.admin.unsafe(text)
    await db.admin.unsafe(text)
  })
})
