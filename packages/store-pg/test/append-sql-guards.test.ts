import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Sql } from 'postgres'
import type { ValidEnvelope } from '@eventplane/core'
import { ROLES } from '@eventplane/store-pg'
import { type TestDatabase, createTestDatabase } from '@eventplane/store-pg/testing'
import { appendSql } from '../src/sql/append.ts'
import { factoryFor, stream } from './helpers.ts'

// The append functions are the database's own boundary: a role holding
// EXECUTE may call them with any arguments, past the TypeScript checks. Since
// 0010 the table has no CHECK on the names; the function's checks are the
// only ones (migrations/0015, "The rules the table's CHECKs had").

describe('the append function refuses what the TypeScript checks refuse, writing nothing', () => {
  let db: TestDatabase
  let sql: Sql
  const count = async () => (await db.admin<{ n: number }[]>`select count(*)::int as n from eventplane.events`)[0]!.n
  const event = (): ValidEnvelope => factoryFor('acme').intent(stream('acme', 'ok'), 'created', { a: 1 })
  /** The SQLSTATE and constraint of a direct call, or 'ok'. */
  const call = (tenant: string, category: string, id: string, events: ValidEnvelope[] = [event()]) =>
    appendSql(sql, tenant, category, id, -1, events, false).then(
      () => 'ok',
      (e: { code?: string; constraint_name?: string }) => `${e.code} ${e.constraint_name ?? ''}`.trim(),
    )

  before(async () => {
    db = await createTestDatabase('ep_sql_guards')
    sql = db.connect(ROLES.intentWriter, 1)
  })
  after(() => db.drop())

  test('names one character over the limit or with a character outside the alphabet: 23514, nothing written', async () => {
    const cases: [string, string, string, string][] = [
      ['x'.repeat(65), 'deployment', 'web-1', 'events_tenant_id_check'],
      ['acme', 'x'.repeat(65), 'web-1', 'events_category_check'],
      ['acme', 'deployment', 'x'.repeat(129), 'events_stream_id_check'],
      ['ac.me', 'deployment', 'web-1', 'events_tenant_id_check'],
      ['acme', 'de:ployment', 'web-1', 'events_category_check'],
      ['acme', 'deployment', 'web 1', 'events_stream_id_check'],
      // NATS subject tokens and wildcards: a name holding one would change the subject it is published on.
      ['acme', 'deployment', 'web.1', 'events_stream_id_check'],
      ['acme', 'deployment', 'web*', 'events_stream_id_check'],
      ['acme', 'deployment', 'web>', 'events_stream_id_check'],
      ['ac:me', 'deployment', 'web-1', 'events_tenant_id_check'],
      ['acme', 'de.ployment', 'web-1', 'events_category_check'],
      ['', 'deployment', 'web-1', 'events_tenant_id_check'],
    ]
    for (const [tenant, category, id, constraint] of cases) {
      assert.equal(await call(tenant, category, id), `23514 ${constraint}`, `${tenant}/${category}/${id}`)
    }
    assert.equal(await count(), 0)
    // At the limit, every name is accepted (the bound is the TypeScript one, not one lower).
    assert.equal(await call('x'.repeat(64), 'y'.repeat(64), `z:${'z'.repeat(126)}`), 'ok')
    assert.equal(await count(), 1)
  })

  test('a type outside the alphabet or over 128 characters: 23514 on the table CHECK, alone or in a batch, nothing written', async () => {
    // The type is the one name the append function does not check itself: the table's CHECK (0001) is its
    // only guard, and the canonical text of the chain writes it between quotes as it is (0014).
    const before = await count()
    const typed = (type: string): ValidEnvelope => ({ ...event(), type })
    for (const type of ['cre"ated', 'cre.ated', 'cre ated', 'x'.repeat(129)]) {
      assert.equal(await call('acme', 'deployment', 'types', [typed(type)]), '23514 events_type_check', type)
      assert.equal(await call('acme', 'deployment', 'types', [event(), typed(type)]), '23514 events_type_check', type)
    }
    assert.equal(await count(), before)
    assert.equal(await call('acme', 'deployment', 'types', [typed('x'.repeat(128))]), 'ok')
    assert.equal(await count(), before + 1)
  })

  test('a kind the function does not take, alone or in a batch, is 42501 for its role, nothing written', async () => {
    const before = await count()
    const f = factoryFor('acme')
    const s = stream('acme', 'kinds')
    const fact = f.fact(s, 'scaled', {})
    const intent = f.intent(s, 'created', {})
    /** The SQLSTATE of `fn` called by `role` with `events` as they are (kinds included). */
    const direct = async (role: string, fn: string, events: ValidEnvelope[]) => {
      const as = db.connect(role as typeof ROLES.intentWriter, 1)
      const col = <K extends keyof ValidEnvelope>(k: K) => events.map((e) => e[k])
      return as`
        select * from eventplane.${as(fn)}('acme', 'deployment', 'kinds', -1, ${col('event_id') as string[]}::uuid[],
          ${col('kind') as string[]}::text[], ${col('type') as string[]}::text[], ${col('schema_version') as number[]}::smallint[],
          ${as.json(col('data') as never)}, ${col('correlation_id') as string[]}::uuid[], ${col('causation_id') as string[]}::uuid[],
          ${col('caused_by') as string[]}::text[], ${col('occurred_at') as string[]}::timestamptz[], false)`.then(
        () => 'ok',
        (e: { code?: string }) => e.code,
      )
    }
    assert.equal(await direct(ROLES.intentWriter, 'append_intents', [fact]), '42501')
    assert.equal(await direct(ROLES.intentWriter, 'append_intents', [intent, fact]), '42501')
    assert.equal(await direct(ROLES.factWriter, 'append_facts', [intent]), '42501')
    assert.equal(await direct(ROLES.factWriter, 'append_facts', [fact, intent]), '42501')
    assert.equal(await count(), before)
  })

  test('field arrays of different lengths (any one of them longer) or an empty batch: 22023, nothing written', async () => {
    const before = await count()
    const e = event()
    const short = await sql`
      select * from eventplane.append_intents('acme', 'deployment', 'arrays', -1, ${[e.event_id]}::uuid[],
        ${['intent', 'intent']}::text[], ${[e.type]}::text[], ${[1]}::smallint[], ${sql.json([e.data] as never)},
        ${[e.correlation_id]}::uuid[], ${[null]}::uuid[], ${[e.caused_by]}::text[], ${[e.occurred_at]}::timestamptz[],
        false)`.then(
      () => 'ok',
      (err: { code?: string }) => err.code,
    )
    assert.equal(short, '22023')
    const empty = await sql`
      select * from eventplane.append_intents('acme', 'deployment', 'arrays', -1, '{}'::uuid[], '{}'::text[],
        '{}'::text[], '{}'::smallint[], '[]'::jsonb, '{}'::uuid[], '{}'::uuid[], '{}'::text[], '{}'::timestamptz[],
        false)`.then(
      () => 'ok',
      (err: { code?: string }) => err.code,
    )
    assert.equal(empty, '22023')
    // Each field array one element longer than the ids (the one-event path reads element 1 of each): 22023.
    const fields = {
      event_ids: [[e.event_id], 'uuid[]'],
      kinds: [['intent'], 'text[]'],
      types: [[e.type], 'text[]'],
      schema_versions: [[1], 'smallint[]'],
      data: [[e.data], 'jsonb'],
      correlation_ids: [[e.correlation_id], 'uuid[]'],
      causation_ids: [[null], 'uuid[]'],
      caused_by: [[e.caused_by], 'text[]'],
      occurred_at: [[e.occurred_at], 'timestamptz[]'],
    } as const
    const longer: Record<string, string | undefined> = {}
    for (const name of Object.keys(fields)) {
      const args = Object.entries(fields).map(([field, [values, type]]) => {
        const list = field === name ? [...values, values[0]] : [...values]
        return type === 'jsonb' ? sql`${sql.json(list as never)}` : sql`${list as never}::${sql.unsafe(type)}`
      })
      longer[name] = await sql`
        select * from eventplane.append_intents('acme', 'deployment', 'arrays', -1, ${args[0]!}, ${args[1]!},
          ${args[2]!}, ${args[3]!}, ${args[4]!}, ${args[5]!}, ${args[6]!}, ${args[7]!}, ${args[8]!}, false)`.then(
        () => 'ok',
        (err: { code?: string }) => err.code,
      )
    }
    assert.deepEqual(longer, Object.fromEntries(Object.keys(fields).map((name) => [name, '22023'])))
    assert.equal(await count(), before)
  })
})
