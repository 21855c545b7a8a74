import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { PgEventStore, ROLES, withTenant } from '@eventplane/store-pg'
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
})
