import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { Type } from '@sinclair/typebox'
import { type ValidEnvelope, SchemaRegistry, isEventplaneError } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

const BAD_NAMES = [
  'a.b',
  'a*',
  '>',
  'a b',
  'tab\there',
  'a$b',
  'ctl\u0001',
  'nul\u0000',
  'caf\u00e9',
  '\u{1F600}',
  '',
  'x'.repeat(200),
]

describe('bad input is rejected with a typed error and nothing is written', () => {
  let db: TestDatabase
  let store: PgEventStore
  const count = async () => Number((await db.admin`select count(*) from eventplane.events`)[0]!.count)
  const valid = () => factoryFor('acme').intent(stream('acme', 'ok'), 'created', { a: 1 })

  before(async () => {
    db = await createTestDatabase('ep_badinput')
    const registry = new SchemaRegistry().register('created', 1, Type.Object({ a: Type.Number() }))
    store = new PgEventStore(db.connect(ROLES.intentWriter, 2), { registry: undefined })
    strict = new PgEventStore(db.connect(ROLES.intentWriter, 2), { registry })
  })
  let strict: PgEventStore
  after(() => db.drop())

  test('bad names in the stream or the envelope', async () => {
    for (const bad of BAD_NAMES) {
      for (const field of ['tenant', 'category', 'id'] as const) {
        const s = { ...stream('acme', 'ok'), [field]: bad }
        await assert.rejects(
          store.append(s, [valid()]),
          (e) => isEventplaneError(e, 'core.invalid_name'),
          `${field}=${JSON.stringify(bad)}`,
        )
      }
      const e = valid()
      const forged: ValidEnvelope[] = [
        { ...e, tenant_id: bad },
        { ...e, type: bad },
        { ...e, stream: { ...e.stream, category: bad } },
      ]
      for (const f of forged) {
        await assert.rejects(
          store.append(stream('acme', 'ok'), [f]),
          (err) => isEventplaneError(err, 'core.invalid_name') || isEventplaneError(err, 'core.invalid_envelope'),
        )
      }
      assert.throws(
        () => factoryFor('acme').intent({ category: bad, id: 'x' }, 'created', {}),
        (err) => isEventplaneError(err, 'core.invalid_name') || isEventplaneError(err, 'core.invalid_envelope'),
      )
    }
    assert.equal(await count(), 0)
  })

  test('every read that takes a tenant refuses a bad tenant name (core.invalid_name), never an empty answer', async () => {
    // Unchecked, row level security would answer a typo such as `acme.*` with an empty log.
    const reader = new PgEventStore(db.connect(ROLES.reader, 1))
    const drain = async (it: AsyncIterable<unknown>) => {
      for await (const _ of it);
    }
    const id = '01a233d1-2399-7384-920e-857c57ffa9d3'
    for (const bad of BAD_NAMES) {
      const reads: Record<string, () => Promise<unknown>> = {
        readAll: () => drain(reader.readAll({ tenant: bad })),
        readCategory: () => drain(reader.readCategory(bad, 'deployment')),
        readStream: () => drain(reader.readStream({ tenant: bad, category: 'deployment', id: 'ok' })),
        readCorrelation: () => reader.readCorrelation(bad, id),
        readEvents: () => reader.readEvents(bad, [id]),
        listStreams: () => reader.listStreams(bad),
      }
      for (const [name, read] of Object.entries(reads))
        await assert.rejects(read(), (e) => isEventplaneError(e, 'core.invalid_name'), `${name} ${JSON.stringify(bad)}`)
    }
  })

  test('data over the size limit, non-object data, NUL characters and schema violations', async () => {
    const e = valid()
    const cases: [unknown, string][] = [
      [{ big: 'x'.repeat(70 * 1024) }, 'core.payload_too_large'],
      [[1, 2], 'core.invalid_envelope'],
      ['text', 'core.invalid_envelope'],
      [null, 'core.invalid_envelope'],
      [{ s: 'a\u0000b' }, 'core.invalid_data'],
      [{ 'k\u0000': 1 }, 'core.invalid_data'],
      [{ lone: '\ud800' }, 'core.invalid_data'],
      [{ n: Number.NaN }, 'core.invalid_data'],
    ]
    for (const [data, code] of cases) {
      await assert.rejects(
        store.append(stream('acme', 'ok'), [{ ...e, data } as ValidEnvelope]),
        (err) => isEventplaneError(err, code as never),
        code,
      )
    }
    await assert.rejects(strict.append(stream('acme', 'ok'), [{ ...e, data: { a: 'not a number' } }]), (err) =>
      isEventplaneError(err, 'core.schema_violation'),
    )
    await assert.rejects(strict.append(stream('acme', 'ok'), [{ ...e, type: 'unregistered' }]), (err) =>
      isEventplaneError(err, 'core.unknown_schema'),
    )
    assert.throws(
      () => factoryFor('acme').intent(stream('acme', 'ok'), 'created', { big: 'x'.repeat(70 * 1024) }),
      (err) => isEventplaneError(err, 'core.payload_too_large'),
    )
    assert.equal(await count(), 0)
  })

  test('malformed envelopes: bad ids, broken lineage, an empty batch, duplicate ids', async () => {
    const e = valid()
    const s = stream('acme', 'ok')
    await assert.rejects(store.append(s, [{ ...e, event_id: 'not-a-uuid' }]), (err) =>
      isEventplaneError(err, 'core.invalid_envelope'),
    )
    await assert.rejects(store.append(s, [{ ...e, correlation_id: valid().event_id }]), (err) =>
      isEventplaneError(err, 'core.invalid_envelope'),
    )
    await assert.rejects(store.append(s, [{ ...e, occurred_at: 'yesterday' }]), (err) =>
      isEventplaneError(err, 'core.invalid_envelope'),
    )
    await assert.rejects(store.append(s, [{ ...e, extra: 1 } as ValidEnvelope]), (err) =>
      isEventplaneError(err, 'core.invalid_envelope'),
    )
    await assert.rejects(store.append(s, []), (err) => isEventplaneError(err, 'core.invalid_envelope'))
    await assert.rejects(store.append(s, [e, e]), (err) => isEventplaneError(err, 'core.invalid_envelope'))
    await assert.rejects(store.append(stream('acme', 'other'), [e]), (err) =>
      isEventplaneError(err, 'core.stream_mismatch'),
    )
    // The same stream id in another category is another stream.
    await assert.rejects(store.append({ ...s, category: 'audit' }, [e]), (err) =>
      isEventplaneError(err, 'core.stream_mismatch'),
    )
    await assert.rejects(store.append(s, [e], { expectedVersion: -3 }), (err) =>
      isEventplaneError(err, 'core.invalid_envelope'),
    )
    assert.equal(await count(), 0)
  })

  test('SQL-injection-looking strings are stored verbatim as data', async () => {
    const s = stream('acme', 'inject')
    const data = {
      name: "'; drop table eventplane.events; --",
      q: "x' or '1'='1",
      dollar: '$$ select 1 $$',
      "key'); delete from eventplane.events; --": 'v',
      unicode: 'caf\u00e9 \u{1F600}',
    }
    const event = factoryFor('acme').intent(s, 'created', data)
    await store.append(s, [event])
    const [read] = await store.readStreamToArray(s)
    assert.deepEqual(read!.data, data)
    assert.equal(await count(), 1)
  })
})
