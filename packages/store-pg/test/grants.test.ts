import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { PgEventStore, ROLES, connectPg, redactUrl, roleUrl, withTenant } from '@eventplane/store-pg'
import { useTestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

// The roles' grants on the log, as privileges: RLS (no INSERT policy for an
// application role) refuses a direct INSERT too, so a privilege granted by
// mistake would hide behind it; each guard is checked on its own here.

const APP_ROLES = Object.values(ROLES).filter((r) => r !== ROLES.owner)

/** Who may execute each append function (migrations/0013; the role's grant decides the kinds it may append). */
const APPEND_GRANTS: Record<string, string[]> = {
  append_intents: [ROLES.intentWriter, ROLES.operator],
  append_facts: [ROLES.factWriter, ROLES.operator],
  append_to_stream: [ROLES.operator],
}

describe("the roles' grants on the event log", () => {
  const db = useTestDatabase('ep_grants')

  test('no application role holds INSERT, UPDATE, DELETE or TRUNCATE on eventplane.events', async () => {
    const rows = await db.admin<{ role: string; privilege: string }[]>`
      select r.role, p.privilege
        from unnest(${APP_ROLES}::text[]) as r(role),
             unnest(array['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) as p(privilege)
       where has_table_privilege(r.role, 'eventplane.events', p.privilege)`
    assert.deepEqual(
      rows.map((r) => `${r.role} ${r.privilege}`),
      [],
    )
  })

  test('each append function is executable by exactly the roles of its kinds, not by PUBLIC', async () => {
    const rows = await db.admin<{ fn: string; role: string }[]>`
      select p.proname as fn, r.role
        from pg_proc p, unnest(${APP_ROLES}::text[]) as r(role)
       where p.pronamespace = 'eventplane'::regnamespace and p.proname = any(${Object.keys(APPEND_GRANTS)}::text[])
         and has_function_privilege(r.role, p.oid, 'EXECUTE')
       order by 1, 2`
    const granted: Record<string, string[]> = {}
    for (const r of rows) (granted[r.fn] ??= []).push(r.role)
    assert.deepEqual(
      granted,
      Object.fromEntries(Object.entries(APPEND_GRANTS).map(([fn, roles]) => [fn, [...roles].sort()])),
    )
    const [pub] = await db.admin<{ n: number }[]>`
      select count(*)::int as n from pg_proc p, aclexplode(p.proacl) a
       where p.pronamespace = 'eventplane'::regnamespace and p.proname = any(${Object.keys(APPEND_GRANTS)}::text[])
         and a.grantee = 0`
    assert.equal(pub!.n, 0, 'PUBLIC may execute no append function')
  })

  test('every SECURITY DEFINER function of the schema runs with search_path pinned to pg_catalog, pg_temp', async () => {
    // Run as their owner, with names in their bodies unqualified (set_config, cardinality, sha256, …): a
    // caller's search_path naming a schema it may create in first would otherwise choose what they call.
    const rows = await db.admin<{ fn: string; config: string }[]>`
      select p.proname as fn, coalesce(array_to_string(p.proconfig, ' | '), '') as config
        from pg_proc p
       where p.pronamespace = 'eventplane'::regnamespace and p.prosecdef
       order by 1`
    const unpinned = rows.filter((r) => !r.config.split(' | ').includes('search_path=pg_catalog, pg_temp'))
    assert.deepEqual(
      unpinned.map((r) => `${r.fn}: ${r.config || '(no settings)'}`),
      [],
    )
    for (const fn of Object.keys(APPEND_GRANTS))
      assert.ok(
        rows.some((r) => r.fn === fn),
        `${fn} is SECURITY DEFINER`,
      )
    // Seen from a caller: a projector's temporary pg_namespace (readable by the owner) is not the catalog that
    // ensure_projection_shadow looks in (before 0023 it was: the schema it names was never created).
    const projector = db.connect(ROLES.projector, 1)
    const shadow = await projector.begin(async (tx) => {
      await tx`create temp table pg_namespace (nspname name)`
      await tx`grant select on pg_temp.pg_namespace to ${tx(ROLES.owner)}`
      await tx`insert into pg_temp.pg_namespace values ('eventplane_shadow_' || left(md5('victim'), 16) || '_1')`
      const [row] = await tx<{ name: string }[]>`select eventplane.ensure_projection_shadow('victim', 1) as name`
      return row!.name
    })
    const [created] = await db.admin<{ n: number }[]>`
      select count(*)::int as n from pg_catalog.pg_namespace where nspname = ${shadow}`
    assert.equal(created!.n, 1, `${shadow} was created`)
  })

  test('UPDATE and DELETE through withTenant, even as a superuser, are store.forbidden and change nothing', async () => {
    const s = stream('acme', 'append-only')
    await new PgEventStore(db.connect(ROLES.intentWriter, 1)).append(s, [factoryFor('acme').intent(s, 'created', {})])
    for (const statement of ['update eventplane.events set data = \'{"x": 1}\'', 'delete from eventplane.events']) {
      await assert.rejects(
        withTenant(db.admin, 'acme', (tx) => tx.unsafe(statement)),
        (e) => isEventplaneError(e, 'store.forbidden') && /append-only/.test((e as Error).message),
        statement,
      )
    }
    const rows = await db.admin<{ data: unknown }[]>`select data from eventplane.events`
    assert.deepEqual(
      rows.map((r) => r.data),
      [{}],
    )
  })

  test('a batch of intents and facts goes through append_to_stream: the operator appends it, a writer of one kind may not', async () => {
    const s = stream('acme', 'mixed')
    const f = factoryFor('acme')
    const batch = () => [f.intent(s, 'created', {}), f.fact(s, 'scaled', {})]
    for (const role of [ROLES.intentWriter, ROLES.factWriter]) {
      await assert.rejects(
        new PgEventStore(db.connect(role, 1)).append(s, batch()),
        (e) => isEventplaneError(e, 'store.forbidden'),
        role,
      )
    }
    const result = await new PgEventStore(db.connect(ROLES.operator, 1)).append(s, batch())
    assert.deepEqual(
      result.events.map((e) => e.streamVersion),
      [1, 2],
    )
    const rows = await db.admin<{ kind: string }[]>`
      select kind from eventplane.events where stream_id = 'mixed' order by stream_version`
    assert.deepEqual(
      rows.map((r) => r.kind),
      ['intent', 'fact'],
    )
  })
})

describe('role URLs and the URLs printed', () => {
  const db = useTestDatabase('ep_role_urls')

  test("a role's URL is the admin URL with the role as user and no password, unless EVENTPLANE_DATABASE_URL_<ROLE> is set", async () => {
    const admin = 'postgres://postgres:s3cret@db.example:6543/app?sslmode=require'
    assert.equal(
      roleUrl(admin, ROLES.factWriter, {}),
      'postgres://eventplane_fact_writer@db.example:6543/app?sslmode=require',
    )
    const other = 'postgres://w:pw@elsewhere/app'
    assert.equal(roleUrl(admin, ROLES.factWriter, { EVENTPLANE_DATABASE_URL_FACT_WRITER: other }), other)
    assert.equal(
      roleUrl(admin, ROLES.factWriter, { EVENTPLANE_DATABASE_URL_FACT_WRITER: '' }).includes('s3cret'),
      false,
    )
    // Connected with it, PostgreSQL sees the role, and the application name `status` reads.
    const sql = connectPg(roleUrl(db.url, ROLES.reader, {}), { max: 1 })
    try {
      const [row] = await sql<{ user: string; app: string }[]>`
        select current_user as user, current_setting('application_name') as app`
      assert.deepEqual({ ...row }, { user: ROLES.reader, app: 'eventplane' })
    } finally {
      await sql.end({ timeout: 5 })
    }
  })

  test('a URL printed has its password replaced; one that does not parse is not printed at all', () => {
    assert.equal(redactUrl('postgres://u:s3cret@h:5432/d'), 'postgres://u:***@h:5432/d')
    assert.equal(redactUrl('nats://h:4222'), 'nats://h:4222')
    assert.equal(redactUrl('postgres://u:s3cret@[bad-host/d'), '<unparseable url>')
  })
})
