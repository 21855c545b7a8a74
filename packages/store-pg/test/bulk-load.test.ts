import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { before, describe, test } from 'node:test'
import { PgEventStore, ROLES, verifyLog } from '@eventplane/store-pg'
import { bulkLoadEvents, useTestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

const PLACEHOLDER = createHash('sha256').update('bulk-load test placeholder').digest()

describe('bulkLoadEvents, the benchmarks’ bulk load', () => {
  const db = useTestDatabase('ep_bulk_load')
  let store: PgEventStore

  before(async () => {
    store = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    // 20 streams (d0…d19, tenant0…tenant9) of 2 events each, every one stored with the placeholder.
    await bulkLoadEvents(db.admin, 0, 39, 20, { placeholderHash: PLACEHOLDER })
  })

  test('a placeholder hash is stored on every loaded event, and verify reports the loaded stream from its first event', async () => {
    const [row] = await db.admin<{ n: number; placeholder: number }[]>`
      select count(*)::int as n, count(*) filter (where hash = ${PLACEHOLDER})::int as placeholder
        from eventplane.events`
    assert.deepEqual(row, { n: 40, placeholder: 40 })
    const result = await verifyLog(db.admin, { tenant: 'tenant0', stream: { category: 'deployment', id: 'd0' } })
    // The verifier reports a stream's first broken link.
    assert.deepEqual(
      result.breaks.map((b) => b.version),
      [1],
    )
  })

  test('an event appended on top of a loaded stream chains from the placeholder; a new stream verifies', async () => {
    const s = stream('tenant0', 'd0')
    const f = factoryFor('tenant0')
    await store.append(s, [f.intent(s, 'scaled', { replicas: 3 })], { expectedVersion: 2 })
    const [link] = await db.admin<{ ok: boolean }[]>`
      select e.hash = eventplane.chain_link(${PLACEHOLDER}::bytea, e) as ok from eventplane.events e
       where e.tenant_id = 'tenant0' and e.stream_id = 'd0' and e.stream_version = 3`
    assert.equal(link!.ok, true)
    const fresh = stream('tenant0', 'fresh')
    await store.append(fresh, [f.intent(fresh, 'created', {}), f.intent(fresh, 'scaled', {})])
    const result = await verifyLog(db.admin, { tenant: 'tenant0', stream: { category: 'deployment', id: 'fresh' } })
    assert.deepEqual(result.breaks, [])
  })

  test('`into` loads the same streams and versions into another table, and nothing into the log', async () => {
    await db.admin`create table bulk_copy (
      global_position bigint generated always as identity primary key, event_id uuid not null unique,
      tenant_id text not null, kind text not null, category text not null, stream_id text not null,
      stream_version bigint not null, type text not null, schema_version smallint not null, data jsonb not null,
      correlation_id uuid not null, causation_id uuid, caused_by text not null, occurred_at timestamptz not null,
      recorded_at timestamptz not null default now())`
    const before = await db.admin<{ n: number }[]>`select count(*)::int as n from eventplane.events`
    await bulkLoadEvents(db.admin, 0, 39, 20, { into: 'bulk_copy' })
    const keys = (table: string) =>
      db.admin<{ k: string }[]>`
        select tenant_id || '/' || stream_id || '/' || stream_version || '/' || data::text as k
          from ${db.admin(table)} where stream_version <= 2 and tenant_id like 'tenant%' and stream_id ~ '^d[0-9]+$'
         order by 1`
    assert.deepEqual(await keys('bulk_copy'), await keys('eventplane.events'))
    assert.equal((await keys('bulk_copy')).length, 40)
    const afterCount = await db.admin<{ n: number }[]>`select count(*)::int as n from eventplane.events`
    assert.equal(afterCount[0]!.n, before[0]!.n)
  })
})
