import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { EventFactory, type ValidEnvelope, isEventplaneError, validateEnvelope } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { useTestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

// The append's bounds at their edges: the limit itself is accepted, one over
// it is refused with its stable code, and a refusal writes nothing.

describe('append bounds at the edge: the limit passes, one over is refused and nothing is written', () => {
  const db = useTestDatabase('ep_append_bounds')
  const count = async () => (await db.admin<{ n: number }[]>`select count(*)::int as n from eventplane.events`)[0]!.n
  /** data stored as exactly `bytes` bytes: {"s": "xx…"} (jsonb's form) is 9 bytes around the string. */
  const dataOf = (bytes: number) => ({ s: 'x'.repeat(bytes - 9) })

  test('maxBatchSize events pass; one more is core.invalid_envelope', async () => {
    const store = new PgEventStore(db.connect(ROLES.intentWriter, 1), { maxBatchSize: 3 })
    const s = stream('acme', 'batch-size')
    const f = factoryFor('acme')
    const events = (n: number) => Array.from({ length: n }, (_, i) => f.intent(s, 'scaled', { i }))
    await assert.rejects(store.append(s, events(4)), (e) => isEventplaneError(e, 'core.invalid_envelope'))
    assert.equal(await count(), 0)
    assert.equal((await store.append(s, events(3))).nextExpectedVersion, 3)
  })

  test('data of exactly maxDataBytes passes; one byte more is core.payload_too_large, in the factory and the store', async () => {
    const max = 1000
    const store = new PgEventStore(db.connect(ROLES.intentWriter, 1), { maxDataBytes: max })
    const f = EventFactory.forTenant('acme', { causedBy: 'user:test', maxDataBytes: max })
    const s = stream('acme', 'data-size')
    const before = await count()
    assert.throws(
      () => f.intent(s, 'created', dataOf(max + 1)),
      (e) => isEventplaneError(e, 'core.payload_too_large'),
    )
    // A copy is not a validated envelope: the store checks it with its own bound.
    const over = { ...factoryFor('acme').intent(s, 'created', dataOf(max + 1)) }
    await assert.rejects(store.append(s, [over]), (e) => isEventplaneError(e, 'core.payload_too_large'))
    assert.equal(await count(), before)
    const at = f.intent(s, 'created', dataOf(max))
    await store.append(s, [{ ...at }])
    assert.equal(await count(), before + 1)
    const [stored] = await db.admin<{ n: number }[]>`
      select octet_length(data::text) as n from eventplane.events where event_id = ${at.event_id}`
    assert.equal(stored!.n, max, 'the limit is the size the log stores')
  })

  test('data nested 64 levels deep passes and reads back; 65 is core.invalid_data', async () => {
    const store = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    const s = stream('acme', 'depth')
    /** `levels` objects inside each other around a number: the number is `levels` deep. */
    const nest = (levels: number) => {
      let v: unknown = 1
      for (let i = 0; i < levels; i++) v = { a: v }
      return v as { a: never }
    }
    const before = await count()
    assert.throws(
      () => factoryFor('acme').intent(s, 'created', nest(65)),
      (e) => isEventplaneError(e, 'core.invalid_data'),
    )
    const deep = factoryFor('acme').intent(s, 'created', nest(64))
    await assert.rejects(store.append(s, [{ ...deep, data: nest(65) }]), (e) =>
      isEventplaneError(e, 'core.invalid_data'),
    )
    assert.equal(await count(), before)
    await store.append(s, [{ ...deep }])
    assert.deepEqual((await store.readStreamToArray(s))[0]!.data, nest(64))
  })

  test('an event that names itself as its cause, or an instant that is no real day, is core.invalid_envelope', async () => {
    const store = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    const s = stream('acme', 'lineage')
    const root = factoryFor('acme').intent(s, 'created', {})
    const child = factoryFor('acme').causedBy(root).intent(s, 'scaled', {})
    const before = await count()
    const bad: [string, ValidEnvelope][] = [
      ['self-caused', { ...child, causation_id: child.event_id }],
      ['2023-02-29', { ...root, occurred_at: '2023-02-29T10:00:00Z' }],
      ['2024-02-30', { ...root, occurred_at: '2024-02-30T10:00:00Z' }],
      ['2024-04-31', { ...root, occurred_at: '2024-04-31T10:00:00Z' }],
    ]
    for (const [what, event] of bad) {
      // Where no PostgreSQL would refuse the instant (the gateway's check before the bus) and in the store.
      assert.throws(
        () => validateEnvelope(event),
        (e) => isEventplaneError(e, 'core.invalid_envelope'),
        what,
      )
      await assert.rejects(store.append(s, [event]), (e) => isEventplaneError(e, 'core.invalid_envelope'), what)
    }
    assert.equal(await count(), before)
    // The real days next to them pass.
    await store.append(s, [{ ...root, occurred_at: '2024-02-29T10:00:00Z' }])
    await store.append(s, [{ ...child, occurred_at: '2024-04-30T10:00:00Z' }])
    assert.equal(await count(), before + 2)
  })
})
