import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { Sql } from 'postgres'
import type { ValidEnvelope } from '@eventplane/core'
import { ROLES, type RoleName } from '@eventplane/store-pg'
import { useTestDatabase } from '@eventplane/store-pg/testing'
import { appendSql } from '../src/sql/append.ts'
import { readEventsByIdSql } from '../src/sql/read-events-by-id.ts'
import { factoryFor, stream } from './helpers.ts'

// Every function of the log that sets eventplane.tenant (the tenant row level
// security reads) sets it for the caller's transaction only (set_config(…,
// true)): a session that called one, outside any transaction of its own, has
// no tenant afterwards, so the next user of a pooled connection sees no row
// through RLS. isolation.test.ts checks withTenant and read_stream; this is
// every other one, each on a connection of its own.

const SETTING = `select coalesce(current_setting('eventplane.tenant', true), '') as tenant`

describe('each function that sets the tenant sets it for its own transaction only', () => {
  const db = useTestDatabase('ep_tenant_scope')
  const web = stream('acme', 'web')

  /** One event of tenant acme of `kind`, for the append functions. */
  const event = (kind: 'intent' | 'fact'): ValidEnvelope =>
    kind === 'intent' ? factoryFor('acme').intent(web, 'created', {}) : factoryFor('acme').fact(web, 'scaled', {})

  const CALLS: [string, RoleName, (sql: Sql) => Promise<unknown>][] = [
    [
      'append_intents',
      ROLES.intentWriter,
      (sql) => appendSql(sql, 'acme', 'deployment', 'web', -1, [event('intent')], false),
    ],
    [
      'append_facts',
      ROLES.factWriter,
      (sql) => appendSql(sql, 'acme', 'deployment', 'web', -1, [event('fact')], false),
    ],
    [
      'append_to_stream',
      ROLES.operator,
      (sql) => appendSql(sql, 'acme', 'deployment', 'web', -1, [event('intent'), event('fact')], false),
    ],
    [
      'read_stream',
      ROLES.reader,
      (sql) => sql`select * from eventplane.read_stream('acme', 'deployment', 'web', 1, false, 10)`,
    ],
    [
      'read_all_for_tenant',
      ROLES.reader,
      (sql) => sql`select * from eventplane.read_all_for_tenant('acme', '0', 0, 10)`,
    ],
    [
      'read_category',
      ROLES.reader,
      (sql) => sql`select * from eventplane.read_category('acme', 'deployment', '0', 0, 10)`,
    ],
    [
      'read_correlation',
      ROLES.reader,
      (sql) => sql`select * from eventplane.read_correlation('acme', gen_random_uuid(), 10)`,
    ],
    ['list_streams', ROLES.reader, (sql) => sql`select * from eventplane.list_streams('acme', null, '', '', 10)`],
    [
      'causation_in_chain',
      ROLES.reader,
      (sql) => sql`select eventplane.causation_in_chain('acme', gen_random_uuid(), gen_random_uuid())`,
    ],
    ['chain_heads', ROLES.reader, (sql) => sql`select * from eventplane.chain_heads('acme')`],
    [
      'chain_rows',
      ROLES.reader,
      (sql) => sql`select * from eventplane.chain_rows('acme', null, null, '', '', '', 0, 10)`,
    ],
    [
      'chain_hashes',
      ROLES.reader,
      (sql) => sql`select * from eventplane.chain_hashes('acme', array[gen_random_uuid()])`,
    ],
    // Not a function: PgEventStore.readEvents's one statement sets the tenant the same way (set_config(…, true)).
    ['readEvents', ROLES.factWriter, (sql) => readEventsByIdSql(sql, 'acme', ['00000000-0000-0000-0000-000000000000'])],
  ]

  test('after a call outside a transaction, the session has no tenant and sees no row through RLS', async () => {
    const seen: Record<string, { tenant: string; rows: number }> = {}
    for (const [name, role, call] of CALLS) {
      const sql = db.connect(role, 1)
      await call(sql)
      const [row] = await sql<{ tenant: string; rows: number }[]>`${sql.unsafe(SETTING)},
        (select count(*)::int from eventplane.events where tenant_id = 'acme') as rows`
      // The operator reads every tenant (its policy is USING (true)): only its setting tells.
      seen[name] = { tenant: row!.tenant, rows: role === ROLES.operator ? 0 : row!.rows }
    }
    assert.deepEqual(seen, Object.fromEntries(CALLS.map(([name]) => [name, { tenant: '', rows: 0 }])))
    // The appends did write: the log holds acme's events, read with the tenant set.
    const [stored] = await db.admin<{ n: number }[]>`select count(*)::int as n from eventplane.events`
    assert.equal(stored!.n, 4)
  })
})
