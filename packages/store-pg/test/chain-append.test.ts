import assert from 'node:assert/strict'
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { MIGRATIONS_DIR, PgEventStore, ROLES, loadMigrations, migrate, verifyLog } from '@eventplane/store-pg'
import { bulkLoadEvents, createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

const hashesOf = async (db: TestDatabase, id: string) =>
  (
    await db.admin<{ h: string }[]>`
      select encode(hash, 'hex') as h from eventplane.events where stream_id = ${id} order by stream_version`
  ).map((r) => r.h)

describe('the chain is computed by the server, in the append', () => {
  let db: TestDatabase
  let store: PgEventStore

  before(async () => {
    db = await createTestDatabase('ep_chain_append')
    store = new PgEventStore(db.connect(ROLES.intentWriter, 2))
  })
  after(() => db.drop())

  test('an insert that brings no hash gets the server’s; one that brings a wrong hash is caught by verify', async () => {
    // Only the append functions (which take no hash argument) and a superuser may insert (0005); a
    // superuser's row without a hash is chained by the trigger, one with a hash keeps it (0013), as it
    // would with the trigger disabled, and verify reports it.
    await db.admin`insert into eventplane.events (event_id, tenant_id, kind, category, stream_id, stream_version, type,
        schema_version, data, correlation_id, caused_by, occurred_at)
      values (gen_random_uuid(), 'acme', 'intent', 'deployment', 'unhashed', 1, 'created', 1, '{}', gen_random_uuid(),
        'user:x', now())`
    const [h] = await hashesOf(db, 'unhashed')
    assert.equal(h!.length, 64)
    const stream1 = (id: string) => ({ tenant: 'acme', stream: { category: 'deployment', id } })
    assert.equal((await verifyLog(db.admin, stream1('unhashed'))).intact, true)
    await db.admin`insert into eventplane.events (event_id, tenant_id, kind, category, stream_id, stream_version, type,
        schema_version, data, correlation_id, caused_by, occurred_at, hash)
      values (gen_random_uuid(), 'acme', 'intent', 'deployment', 'chosen', 1, 'created', 1, '{}', gen_random_uuid(),
        'user:x', now(), '\\x00')`
    const chosen = await verifyLog(db.admin, stream1('chosen'))
    assert.deepEqual(
      chosen.breaks.map((b) => [b.stream_id, b.version]),
      [['chosen', 1]],
    )
  })

  test('an identical retry returns the first result and leaves the hashes as they were', async () => {
    const f = factoryFor('acme')
    const s = stream('acme', 'retried')
    const events = [f.intent(s, 'created', { a: 1 }), f.intent(s, 'scaled', { a: 2 })]
    await store.append(s, events, { expectedVersion: 'no_stream' })
    const first = await hashesOf(db, 'retried')
    const again = await store.append(s, events, { expectedVersion: 'no_stream' })
    assert.equal(again.replayed, true)
    assert.deepEqual(await hashesOf(db, 'retried'), first)
    assert.equal(first.length, 2)
  })

  test('a version written without its predecessor is reported by verify as a missing event', async () => {
    await db.admin`insert into eventplane.events (event_id, tenant_id, kind, category, stream_id, stream_version, type,
        schema_version, data, correlation_id, caused_by, occurred_at)
      values (gen_random_uuid(), 'acme', 'intent', 'deployment', 'gap', 2, 'created', 1, '{}', gen_random_uuid(),
        'user:x', now())`
    const result = await verifyLog(db.admin, { tenant: 'acme', stream: { category: 'deployment', id: 'gap' } })
    assert.deepEqual(
      result.breaks.map((b) => [b.kind, b.version]),
      [['missing', 1]],
    )
  })

  test('a clean log of 100,000 events in 2,000 streams of 10 tenants verifies', async () => {
    await bulkLoadEvents(db.admin, 0, 99_999, 2_000)
    const started = performance.now()
    const result = await verifyLog(db.connect(ROLES.operator, 1))
    const seconds = (performance.now() - started) / 1000
    // Only the forged hash and the gap written on purpose above.
    assert.deepEqual(
      result.breaks.map((b) => `${b.tenant}/${b.stream_id}`),
      ['acme/chosen', 'acme/gap'],
    )
    assert.ok(result.events >= 100_000)
    console.log(`verify: ${result.events} events in ${seconds.toFixed(2)} s, ${Math.round(result.events / seconds)}/s`)
  })
})

describe('the migration chains the events written before it', () => {
  let db: TestDatabase
  let dir: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ep-migrations-'))
    for (const m of await loadMigrations())
      if (m.version < 11) await cp(join(MIGRATIONS_DIR, m.name), join(dir, m.name))
    db = await createTestDatabase('ep_chain_backfill', { migrate: false })
    await migrate(db.admin, { dir })
  })
  after(async () => {
    await db.drop()
    await rm(dir, { recursive: true, force: true })
  })

  test('after the backfill every stream verifies, and appends continue the chains', async () => {
    const f = factoryFor('acme')
    // Before 0011 (and 0013), through the append function of 0010 (one jsonb document).
    const writer = db.connect(ROLES.intentWriter, 1)
    for (const id of ['a', 'b'])
      for (let i = 0; i < 3; i++) {
        const e = f.intent(stream('acme', id), 'scaled', { i })
        const { stream: _, tenant_id: __, ...fields } = e
        await writer`select * from eventplane.append_intents('acme', 'deployment', ${id}, -1, ${writer.json([fields] as never)})`
      }
    await migrate(db.admin)
    const store = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    await store.append(stream('acme', 'a'), [f.intent(stream('acme', 'a'), 'scaled', { i: 3 })])
    const result = await verifyLog(db.admin, { tenant: 'acme' })
    assert.deepEqual(result.breaks, [])
    assert.equal(result.events, 7)
  })
})
