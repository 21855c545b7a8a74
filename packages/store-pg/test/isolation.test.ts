import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { PgEventStore, ROLES, type RoleName, withTenant } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

const insertRow = (tenant: string, kind: string) => `
  insert into eventplane.events (event_id, tenant_id, kind, category, stream_id, stream_version, type,
    schema_version, data, correlation_id, causation_id, caused_by, occurred_at)
  values (gen_random_uuid(), '${tenant}', '${kind}', 'deployment', 'raw-' || gen_random_uuid(), 1, 'created', 1, '{}',
    gen_random_uuid(), null, 'user:x', now())`

describe('tenant isolation and append-only, enforced by PostgreSQL', () => {
  let db: TestDatabase
  const total = async () => Number((await db.admin`select count(*) from eventplane.events`)[0]!.count)

  before(async () => {
    db = await createTestDatabase('ep_rls')
    const writer = new PgEventStore(db.connect(ROLES.intentWriter, 2))
    for (const tenant of ['acme', 'globex']) {
      const f = factoryFor(tenant)
      await writer.append(stream(tenant, 'web'), [f.intent(stream(tenant, 'web'), 'created', { owner: tenant })])
    }
  })
  after(() => db.drop())

  test('application roles are neither superusers nor able to bypass RLS, and RLS is forced', async () => {
    const roles = await db.admin<{ rolname: string; rolsuper: boolean; rolbypassrls: boolean }[]>`
      select rolname, rolsuper, rolbypassrls from pg_roles where rolname like 'eventplane_%' order by rolname`
    assert.deepEqual(
      Object.values(ROLES).filter((name) => !roles.some((r) => r.rolname === name)),
      [],
      'every role of DESIGN §3 exists',
    )
    for (const r of roles) assert.deepEqual([r.rolsuper, r.rolbypassrls], [false, false], r.rolname)
    const [t] = await db.admin`select relrowsecurity, relforcerowsecurity, pg_get_userbyid(relowner) as owner
      from pg_class where oid = 'eventplane.events'::regclass`
    assert.deepEqual([t!.relrowsecurity, t!.relforcerowsecurity, t!.owner], [true, true, ROLES.owner])
  })

  test('a session without a tenant sees zero rows and cannot insert', async () => {
    for (const role of [ROLES.reader, ROLES.intentWriter, ROLES.factWriter] as RoleName[]) {
      const sql = db.connect(role, 1)
      assert.equal(Number((await sql`select count(*) from eventplane.events`)[0]!.count), 0, role)
    }
    const writer = db.connect(ROLES.intentWriter, 1)
    await assert.rejects(writer.unsafe(insertRow('acme', 'intent')), { code: '42501' })
    assert.equal(await total(), 2)
  })

  test('withTenant refuses a tenant name that is not one (core.invalid_name) before it opens a transaction', async () => {
    // Unchecked, `acme.*` or `*` would be set as the tenant and row level security would show an empty log:
    // a typo would look like a tenant without events.
    const reader = db.connect(ROLES.reader, 1)
    let ran = 0
    for (const bad of ['acme.*', '*', '', 'acme web'])
      await assert.rejects(
        withTenant(reader, bad, async () => ran++),
        (e) => isEventplaneError(e, 'core.invalid_name'),
        JSON.stringify(bad),
      )
    assert.equal(ran, 0)
  })

  test('tenant acme cannot read or insert tenant globex rows', async () => {
    const reader = db.connect(ROLES.reader, 1)
    const seen = await withTenant(reader, 'acme', (tx) => tx`select tenant_id from eventplane.events`)
    assert.deepEqual(
      seen.map((r) => r.tenant_id),
      ['acme'],
    )
    const writer = db.connect(ROLES.intentWriter, 1)
    await assert.rejects(
      withTenant(writer, 'acme', (tx) => tx.unsafe(insertRow('globex', 'intent'))),
      (e) => isEventplaneError(e, 'store.forbidden'),
    )
    const store = new PgEventStore(writer)
    const globexEvent = factoryFor('globex').intent(stream('globex', 'web'), 'scaled', {})
    const seenByGlobex = await new PgEventStore(db.connect(ROLES.reader, 1)).readStreamToArray(stream('globex', 'web'))
    assert.equal(seenByGlobex.length, 1)
    await assert.rejects(store.append(stream('acme', 'web'), [globexEvent]), (e) =>
      isEventplaneError(e, 'core.tenant_mismatch'),
    )
    assert.equal(await total(), 2)
  })

  test('intent_writer cannot insert facts and fact_writer cannot insert intents', async () => {
    const s = stream('acme', 'kinds')
    const f = factoryFor('acme')
    const intents = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    const facts = new PgEventStore(db.connect(ROLES.factWriter, 1))
    await assert.rejects(intents.append(s, [f.fact(s, 'scheduled', {})]), (e) =>
      isEventplaneError(e, 'store.forbidden'),
    )
    await assert.rejects(facts.append(s, [f.intent(s, 'created', {})]), (e) => isEventplaneError(e, 'store.forbidden'))
    await facts.append(s, [f.internal(s, 'parked', {})])
    assert.equal(await total(), 3)
  })

  test('UPDATE, DELETE and TRUNCATE fail for every role, the owner and a superuser included', async () => {
    const before = await total()
    const roles = [...Object.values(ROLES), 'postgres']
    for (const role of roles) {
      for (const stmt of [
        "update eventplane.events set data = '{}'",
        'delete from eventplane.events',
        'truncate eventplane.events',
      ]) {
        await assert.rejects(
          db.admin.begin(async (tx) => {
            await tx`select set_config('eventplane.tenant', 'acme', true)`
            if (role !== 'postgres') await tx.unsafe(`set local role ${role}`)
            await tx.unsafe(stmt)
          }),
          (e: { code?: string }) => e.code === '42501' || e.code === 'EPAPO',
          `${role}: ${stmt}`,
        )
      }
    }
    assert.equal(await total(), before)
  })

  test('a tenant set inside one transaction does not leak to the next use of a pooled connection', async () => {
    const reader = db.connect(ROLES.reader, 1)
    const inside = await withTenant(reader, 'acme', (tx) => tx`select count(*)::int as n from eventplane.events`)
    assert.equal(inside[0]!.n, 2)
    await new PgEventStore(reader).readStreamToArray(stream('acme', 'web'))
    const [after] = await reader`select coalesce(current_setting('eventplane.tenant', true), '') as t,
      (select count(*)::int from eventplane.events) as n`
    assert.deepEqual([after!.t, after!.n], ['', 0])
  })
})
