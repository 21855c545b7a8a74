import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { type ValidEnvelope, isEventplaneError } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { useTestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

// An identical retry is the same event id with every field the same
// (migrations/0014 stored_batch compares them all); any one field changed is
// an IdempotencyConflict, never a replay of the stored event, and writes nothing.

describe('idempotency compares every field of a stored event', () => {
  const db = useTestDatabase('ep_idem_fields')

  test('an event id retried with any one field changed is a conflict, never a replay, and writes nothing', async () => {
    const store = new PgEventStore(db.connect(ROLES.operator, 2))
    const s = stream('acme', 'retry-fields')
    const root = factoryFor('acme').intent(s, 'created', { a: 1 })
    const child = factoryFor('acme').causedBy(root).intent(s, 'scaled', { b: 1 })
    await store.append(s, [root])
    await store.append(s, [child])
    const unrelated = factoryFor('acme').intent(s, 'created', {})
    const changed: [string, ValidEnvelope][] = [
      ['stream id', { ...child, stream: { ...child.stream, id: 'retry-fields-2' } }],
      ['category', { ...child, stream: { ...child.stream, category: 'other' } }],
      ['kind', { ...child, kind: 'fact' }],
      ['type', { ...child, type: 'deleted' }],
      ['schema_version', { ...child, schema_version: 2 }],
      ['data', { ...child, data: { b: 2 } }],
      ['correlation_id', { ...child, correlation_id: unrelated.event_id }],
      ['causation_id', { ...child, causation_id: unrelated.event_id }],
      ['caused_by', { ...child, caused_by: 'user:mallory' }],
      ['occurred_at', { ...child, occurred_at: '2001-01-01T00:00:00.000Z' }],
    ]
    for (const [field, event] of changed) {
      const target = { tenant: 'acme', ...event.stream }
      const sameStream = target.category === s.category && target.id === s.id
      // `any`: the insert meets the stored id, the next call probes it; exact (the stream's version): the same.
      for (const expectedVersion of sameStream ? (['any', 2] as const) : (['any'] as const)) {
        const outcome = await store.append(target, [event], { expectedVersion }).then(
          (r) => (r.replayed ? 'replayed' : 'appended'),
          (e: unknown) => (isEventplaneError(e, 'store.idempotency_conflict') ? 'conflict' : String(e)),
        )
        assert.equal(outcome, 'conflict', `${field} changed, expectedVersion ${expectedVersion}`)
      }
    }
    const [row] = await db.admin<{ n: number }[]>`
      select count(*)::int as n from eventplane.events where event_id = ${child.event_id}`
    assert.equal(row!.n, 1)
    assert.deepEqual(
      (await store.readStreamToArray(s)).map((e) => [e.event_id, e.data]),
      [
        [root.event_id, { a: 1 }],
        [child.event_id, { b: 1 }],
      ],
    )
    // The unchanged event is still a replay (the comparison is not simply refusing everything).
    assert.equal((await store.append(s, [structuredClone(child)])).replayed, true)
  })
})
