import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventFactory } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'

type Action =
  | 'select_own'
  | 'select_other'
  | 'insert_own_intent'
  | 'insert_own_fact'
  | 'insert_other_intent'
  | 'insert_other_fact'
  | 'append_intent'
  | 'append_fact'
  | 'append_any_kind'
  | 'append_fact_as_intent'
  | 'update'
  | 'delete'
  | 'truncate'
  | 'lock_events'
  | 'lock_relay_lease'
  | 'take_relay_lease'
  | 'list_open_transactions'
  | 'terminate_stuck_transactions'

/**
 * The expected allow table: every (role, action) not listed is denied. Direct
 * INSERTs are the owner's alone (NOLOGIN: the identity the append functions
 * run as); roles append through the function of the kinds they may append.
 */
const ALLOWED: Record<string, Action[]> = {
  eventplane_owner: [
    'select_own',
    'insert_own_intent',
    'insert_own_fact',
    'append_intent',
    'append_fact',
    'append_any_kind',
    'lock_events',
    'lock_relay_lease',
    'take_relay_lease',
  ],
  eventplane_intent_writer: ['select_own', 'append_intent'],
  eventplane_fact_writer: ['select_own', 'append_fact'],
  eventplane_reader: ['select_own'],
  eventplane_relay: [
    'select_own',
    'select_other',
    'lock_relay_lease',
    'take_relay_lease',
    'list_open_transactions',
    'terminate_stuck_transactions',
  ],
  eventplane_operator: [
    'select_own',
    'select_other',
    'append_intent',
    'append_fact',
    'append_any_kind',
    'list_open_transactions',
  ],
  eventplane_projector: ['select_own', 'select_other'],
  // NOLOGIN, no schema access: its power is used only through the two functions it owns.
  eventplane_guard: [],
}

const insert = (tenant: string, kind: string) => `
  insert into eventplane.events (event_id, tenant_id, kind, category, stream_id, stream_version, type,
    schema_version, data, correlation_id, causation_id, caused_by, occurred_at)
  values (gen_random_uuid(), '${tenant}', '${kind}', 'deployment', 'm-' || md5(random()::text), 1, 't', 1, '{}',
    gen_random_uuid(), null, 'user:x', now())`

const append = (fn: string, kind: string) => `
  select * from eventplane.${fn}('acme', 'deployment', 'm-' || md5(random()::text), -1,
    array[gen_random_uuid()], array['${kind}'], array['t'], array[1]::smallint[], '[{}]'::jsonb,
    array[gen_random_uuid()], array[null]::uuid[], array['user:x'], array[now()], false)`

const STATEMENTS: Record<Action, string> = {
  select_own: `select 1 from eventplane.events where tenant_id = 'acme'`,
  select_other: `select 1 from eventplane.events where tenant_id = 'globex'`,
  insert_own_intent: insert('acme', 'intent'),
  insert_own_fact: insert('acme', 'fact'),
  insert_other_intent: insert('globex', 'intent'),
  insert_other_fact: insert('globex', 'fact'),
  append_intent: append('append_intents', 'intent'),
  append_fact: append('append_facts', 'fact'),
  append_any_kind: append('append_to_stream', 'fact'),
  append_fact_as_intent: append('append_intents', 'fact'),
  update: `update eventplane.events set type = 'x'`,
  delete: `delete from eventplane.events`,
  truncate: `truncate eventplane.events`,
  lock_events: `select 1 from eventplane.events for update`,
  lock_relay_lease: `select 1 from eventplane.relay_leases for update`,
  take_relay_lease: `select eventplane.acquire_relay_lease('matrix')`,
  list_open_transactions: `select * from eventplane.open_transactions()`,
  terminate_stuck_transactions: `select * from eventplane.terminate_stuck_transactions(interval '1 day')`,
}

describe('database role × action matrix (tenant set to acme, RLS forced)', () => {
  let db: TestDatabase
  before(async () => {
    db = await createTestDatabase('ep_matrix')
    const writer = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    for (const tenant of ['acme', 'globex']) {
      const s = { tenant, category: 'deployment', id: 'seed' }
      await writer.append(s, [EventFactory.forTenant(tenant, { causedBy: 'user:seed' }).intent(s, 'create', {})])
    }
  })
  after(() => db.drop())

  /** Runs one statement as `role` in a transaction that is always rolled back. */
  async function allowed(role: string, action: Action): Promise<boolean> {
    let ok = false
    await db.admin
      .begin(async (tx) => {
        await tx.unsafe(`set local role ${role}`)
        await tx`select set_config('eventplane.tenant', 'acme', true)`
        const rows = await tx.unsafe(STATEMENTS[action])
        ok = action.startsWith('select') ? rows.length > 0 : true
        throw new Error('rollback')
      })
      .catch((e: Error) => {
        if (e.message !== 'rollback' && !['42501', 'EPAPO'].includes((e as { code?: string }).code ?? '')) throw e
      })
    return ok
  }

  test('every role is allowed exactly what the table says, nothing more', async () => {
    const roles = (
      await db.admin<{ rolname: string }[]>`select rolname from pg_roles where rolname like 'eventplane_%'`
    ).map((r) => r.rolname)
    assert.deepEqual(
      roles.filter((r) => !(r in ALLOWED)),
      [],
      'every eventplane role is in the table',
    )
    const mismatches: string[] = []
    for (const role of roles) {
      for (const action of Object.keys(STATEMENTS) as Action[]) {
        const expected = ALLOWED[role]!.includes(action)
        const actual = await allowed(role, action)
        if (expected !== actual)
          mismatches.push(
            `${role} ${action}: expected ${expected ? 'allow' : 'deny'}, got ${actual ? 'allow' : 'deny'}`,
          )
      }
    }
    assert.deepEqual(mismatches, [])
  })

  test('every table holding tenant_id has row level security enabled and forced', async () => {
    const tables = await db.admin<{ relname: string; relrowsecurity: boolean; relforcerowsecurity: boolean }[]>`
      select c.relname, c.relrowsecurity, c.relforcerowsecurity from pg_class c
        join pg_namespace n on n.oid = c.relnamespace
       where n.nspname = 'eventplane' and c.relkind in ('r', 'p')
         and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)`
    assert.ok(tables.length >= 1)
    for (const t of tables)
      assert.deepEqual([t.relname, t.relrowsecurity, t.relforcerowsecurity], [t.relname, true, true])
  })
})
