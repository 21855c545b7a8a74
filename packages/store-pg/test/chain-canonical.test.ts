import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import fc from 'fast-check'
import { type EventData, type ValidEnvelope, numericText } from '@eventplane/core'
import {
  PgEventStore,
  ROLES,
  canonicalInstant,
  canonicalText,
  chainLink,
  jsonbText,
  verifyLog,
} from '@eventplane/store-pg'
import { useTestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

/** Awkward payloads: unicode, escapes, nested objects, key order, numbers JavaScript and jsonb print differently. */
const AWKWARD: EventData[] = [
  { b: 1, aa: 2, a: 3, '10': 4, '2': 5, é: 6, 'z😀': 7, '\uffff': 8, ab: 9 },
  { s: 'quote " backslash \\ slash / nl \n tab \t cr \r bs \b ff \f ctl \u0001 \u001f del \u007f' },
  { s: 'é ü ß 中文 😀 \u2028 \u2029 \u00a0', ключ: 'значение' },
  { nested: { z: { y: [1, { b: 2, a: [] }, {}] }, a: null }, t: true, f: false },
  { n: [1.5, 1e21, 1e-7, 1.5e-7, -0, 0, 5e-324, 1.7976931348623157e308, 0.1, -12.5, 2 ** 53 + 2, 123456789012] },
  { n: [1e20, 1.2345e21, -1e-6, 100, 0.000001, 99.99] },
  {},
]

describe('the canonical form: PostgreSQL and JavaScript agree', () => {
  const db = useTestDatabase('ep_chain_canon')
  let store: PgEventStore

  before(async () => {
    store = new PgEventStore(db.connect(ROLES.operator, 2))
  })

  /**
   * Appends `datas` as one batch (each event edited by `edit`, if given) and returns what PostgreSQL stored
   * and what JavaScript computes for it.
   */
  async function both(id: string, datas: readonly EventData[], edit?: (e: ValidEnvelope, i: number) => ValidEnvelope) {
    const f = factoryFor('acme')
    const s = stream('acme', id)
    await store.append(
      s,
      datas.map((d, i) => (edit ? edit(f.intent(s, 'created', d), i) : f.intent(s, 'created', d))),
    )
    const rows = await db.admin<
      { canonical: string; data: string; hash: Buffer; v: string; e: Record<string, unknown>; occurred: string }[]
    >`select eventplane.chain_canonical(e) as canonical, e.data::text as data, e.hash, e.stream_version as v,
             to_jsonb(e) as e, to_char(e.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as occurred
        from eventplane.events e where stream_id = ${id} order by stream_version`
    let prev: Buffer | null = null
    return rows.map((r, i) => {
      const e = r.e
      const fields = {
        event_id: e.event_id as string,
        tenant_id: e.tenant_id as string,
        kind: e.kind as string,
        category: e.category as string,
        stream_id: e.stream_id as string,
        stream_version: Number(r.v),
        type: e.type as string,
        schema_version: e.schema_version as number,
        correlation_id: e.correlation_id as string,
        causation_id: e.causation_id as string | null,
        caused_by: e.caused_by as string,
        occurred_at: r.occurred,
      }
      const fromParsed = canonicalText(fields, jsonbText(datas[i]))
      const link = chainLink(prev, fromParsed)
      prev = r.hash
      return { pg: r, fromParsed, fromText: canonicalText(fields, r.data), link }
    })
  }

  test('awkward payloads give the same canonical text and hash on both sides', async () => {
    const results = await both('awkward', AWKWARD)
    assert.equal(results.length, AWKWARD.length)
    for (const [i, r] of results.entries()) {
      assert.equal(r.fromParsed, r.pg.canonical, `payload ${i}`)
      assert.equal(r.fromText, r.pg.canonical, `payload ${i} (from data::text)`)
      assert.equal(r.link.toString('hex'), r.pg.hash.toString('hex'), `payload ${i}`)
    }
  })

  test('a batch whose events differ in occurred_at and caused_by, in runs and alone, is chained as JavaScript chains it', async () => {
    // The append formats occurred_at and caused_by once per run of equal values (0014): a run that ends,
    // a value that comes back, an instant given with an offset, a principal that needs escaping.
    const at = [
      '2026-11-30T01:02:03.000001Z',
      '2026-11-30T01:02:03.000001Z',
      '2026-11-30T01:02:03.000002Z',
      '2026-11-30T01:02:03.000001Z',
      '2024-02-29T23:59:59.999999+01:00',
      '2024-02-29T22:59:59.999999Z',
      '2026-11-30T01:02:03.5Z',
    ]
    const by = ['user:a', 'user:a', 'user:a', 'user:b', 'user:"q\\', 'user:"q\\', 'user:a']
    const results = await both(
      'runs',
      at.map((_, i) => ({ i })),
      (e, i) => ({ ...e, occurred_at: at[i]!, caused_by: by[i]! }),
    )
    assert.deepEqual(
      results.map((r) => r.pg.occurred),
      at.map(canonicalInstant),
    )
    for (const [i, r] of results.entries()) {
      assert.equal(r.fromParsed, r.pg.canonical, `event ${i}`)
      assert.equal(r.link.toString('hex'), r.pg.hash.toString('hex'), `event ${i}: the stored hash`)
    }
  })

  test('any JSON object a client can send gives the same canonical text on both sides (property)', async () => {
    let n = 0
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(fc.string({ unit: 'grapheme', maxLength: 6 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 }),
        async (data) => {
          const [r] = await both(`prop-${n++}`, [data as EventData])
          assert.equal(r!.fromParsed, r!.pg.canonical)
          assert.equal(r!.link.toString('hex'), r!.pg.hash.toString('hex'))
        },
      ),
      { numRuns: 150 },
    )
  })

  test('the canonical text the trigger writes out is the jsonb text of the documented object, for odd rows too', async () => {
    await db.admin`insert into eventplane.events (event_id, tenant_id, kind, category, stream_id, stream_version, type,
        schema_version, data, correlation_id, causation_id, caused_by, occurred_at)
      values (gen_random_uuid(), 'acme', 'intent', 'deployment', 'odd', 1, 'created', 32767,
              ${db.admin.json(AWKWARD[0]!)}, gen_random_uuid(), gen_random_uuid(), ${'user:"é\\\n😀'}, '0099-12-31T23:59:59.999999-05:00')`
    const rows = await db.admin<{ same: boolean; n: number }[]>`
      select bool_and(eventplane.chain_canonical(e) = jsonb_build_object(
          'event_id', e.event_id, 'tenant_id', e.tenant_id, 'kind', e.kind, 'category', e.category,
          'stream_id', e.stream_id, 'stream_version', e.stream_version, 'type', e.type,
          'schema_version', e.schema_version, 'data', e.data, 'correlation_id', e.correlation_id,
          'causation_id', e.causation_id, 'caused_by', e.caused_by,
          'occurred_at', to_char(e.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))::text) as same,
        count(*)::int as n
      from eventplane.events e`
    assert.equal(rows[0]!.same, true)
    assert.ok(rows[0]!.n > AWKWARD.length)
  })

  test('numbers print as PostgreSQL numeric prints them', () => {
    const cases: [number, string][] = [
      [1.5, '1.5'],
      [1e21, '1000000000000000000000'],
      [1.5e-7, '0.00000015'],
      [-0, '0'],
      [-1.25e22, '-12500000000000000000000'],
      [1e-6, '0.000001'],
      [123, '123'],
    ]
    for (const [n, text] of cases) assert.equal(numericText(n), text, String(n))
  })

  test('instants become UTC with six fraction digits', () => {
    assert.equal(canonicalInstant('2024-02-29T23:30:00.5+01:00'), '2024-02-29T22:30:00.500000Z')
    assert.equal(canonicalInstant('2024-01-01T00:00:00.123456Z'), '2024-01-01T00:00:00.123456Z')
    assert.equal(canonicalInstant('0099-03-01T00:30:00-01:00'), '0099-03-01T01:30:00.000000Z')
  })

  test("the canonical form's SQL functions are inlined where they are called, none parsed again per call", async () => {
    // A SQL function the planner does not inline runs through fmgr_sql, which parses, analyses and
    // plans its body again in every transaction (0015: chain_instant was, in every append).
    const plan = await db.admin.unsafe<{ 'QUERY PLAN': string }[]>(`explain (verbose, costs off)
      select eventplane.chain_instant(e.occurred_at),
             eventplane.chain_canonical_fields(e.event_id, e.tenant_id, e.kind, e.category, e.stream_id,
               e.stream_version, e.type, e.schema_version, e.data, e.correlation_id, e.causation_id, e.caused_by,
               e.occurred_at)
        from eventplane.events e`)
    const text = plan.map((r) => r['QUERY PLAN']).join('\n')
    assert.match(text, /to_char/)
    assert.doesNotMatch(text, /eventplane\.chain_/)
  })

  test('a payload written by another client (1.50, 1e21 as text) verifies: verify hashes the stored jsonb text', async () => {
    await db.admin`insert into eventplane.events (event_id, tenant_id, kind, category, stream_id, stream_version, type,
        schema_version, data, correlation_id, caused_by, occurred_at)
      select gen_random_uuid(), 'acme', 'intent', 'deployment', 'psql', g, 'created', 1,
             '{"n": 1.50, "e": 1e21, "z": -0.0, "s": "\\u00e9"}', gen_random_uuid(), 'user:psql',
             '2024-01-02T03:04:05.123456Z'
        from generate_series(1, 3) g`
    const result = await verifyLog(db.admin, { tenant: 'acme', stream: { category: 'deployment', id: 'psql' } })
    assert.deepEqual(result.breaks, [])
    assert.equal(result.events, 3)
  })
})
