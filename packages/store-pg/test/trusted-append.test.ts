import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { Type } from '@sinclair/typebox'
import { SchemaRegistry, type ValidEnvelope, isEventplaneError } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

describe('append trusts an envelope validated in this process and checks anything else', () => {
  let db: TestDatabase
  let strict: PgEventStore
  const count = async () => Number((await db.admin`select count(*) from eventplane.events`)[0]!.count)

  before(async () => {
    db = await createTestDatabase('ep_trusted')
    // The store's own registry applies only to what it must validate itself.
    const registry = new SchemaRegistry().register('created', 1, Type.Object({ a: Type.Number() }))
    strict = new PgEventStore(db.connect(ROLES.intentWriter, 2), { registry })
  })
  after(() => db.drop())

  test('a validated envelope is appended without a second validation; a copy of it is validated', async () => {
    const s = stream('acme', 'trusted')
    // Validated by its factory (no registry there): the store does not check it again.
    const validated = factoryFor('acme').intent(s, 'created', { a: 'not a number' })
    const copy = { ...validated } as ValidEnvelope
    await assert.rejects(strict.append(s, [copy]), (e) => isEventplaneError(e, 'core.schema_violation'))
    assert.equal(await count(), 0)
    const result = await strict.append(s, [validated])
    assert.equal(result.events[0]!.eventId, validated.event_id)
    assert.equal(await count(), 1)
  })

  test('the batch checks still hold for trusted envelopes: tenant, stream, duplicate ids, expected version', async () => {
    const s = stream('acme', 'checks')
    const e = factoryFor('acme').intent(s, 'created', { a: 1 })
    await assert.rejects(strict.append(stream('globex', 'checks'), [e]), (x) =>
      isEventplaneError(x, 'core.tenant_mismatch'),
    )
    await assert.rejects(strict.append(stream('acme', 'other'), [e]), (x) =>
      isEventplaneError(x, 'core.stream_mismatch'),
    )
    await assert.rejects(strict.append(stream('acme', 'checks', 'audit'), [e]), (x) =>
      isEventplaneError(x, 'core.stream_mismatch'),
    )
    await assert.rejects(strict.append({ ...s, tenant: 'a.b' }, [e]), (x) => isEventplaneError(x, 'core.invalid_name'))
    await assert.rejects(strict.append(s, [e, e]), (x) => isEventplaneError(x, 'core.invalid_envelope'))
    await assert.rejects(strict.append(s, [e], { expectedVersion: -1 }), (x) =>
      isEventplaneError(x, 'core.invalid_envelope'),
    )
    assert.equal(await count(), 1)
  })
})
