import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { type EventData, storedDataBytes, validateData } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { useTestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

// The data limit counts the data as the log stores it (core storedDataBytes), because that, not the JSON a
// client sent, is what the relay must fit into one log message. Held equal to PostgreSQL's own rendering.

/** Numbers and strings whose stored form differs most from their JSON: exponents, fractions, escapes. */
const EDGES: EventData[] = [
  { n: [1e308, -1e308, 5e-324, -5e-324, 1e21, 1e-7, 1.5e-7, 123456789012345680000, 0.1 + 0.2, -0, 1.0, 100] },
  { n: [Number.MAX_SAFE_INTEGER, Number.MIN_VALUE, Number.MAX_VALUE, 2 ** -1074, 1e-6, 0.000001234, 12.5e3] },
  { s: '\b\f\n\r\t"\\/\u0001\u001f\u007f\u0080\u2028\u2029é€🚀', '\u001b"key\\': { '': [[], {}, [{}]] } },
  { a: null, b: true, c: false, d: [null, true, false, 'x', 1, { e: { f: [] } }] },
]

describe('the data limit counts what PostgreSQL stores', () => {
  const db = useTestDatabase('ep_stored_size')

  test('storedDataBytes equals the stored data’s octet_length, for edge values and random JSON objects', async () => {
    const store = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    const f = factoryFor('acme')
    const s = stream('acme', 'sizes')
    const random = fc
      .sample(fc.dictionary(fc.string({ unit: 'binary' }), fc.jsonValue({ maxDepth: 4 })), { numRuns: 400, seed: 7 })
      .filter((data) => {
        try {
          validateData(data, Number.POSITIVE_INFINITY)
          return true
        } catch {
          return false
        }
      }) as EventData[]
    assert.ok(random.length > 300, `${random.length} random objects`)
    const all = [...EDGES, ...random]
    const events = all.map((data) => f.intent(s, 'measured', data))
    for (let i = 0; i < events.length; i += 100) await store.append(s, events.slice(i, i + 100))
    const rows = await db.admin<{ id: string; n: number }[]>`
      select event_id::text as id, octet_length(data::text) as n from eventplane.events
       where tenant_id = 'acme' and type = 'measured'`
    const stored = new Map(rows.map((r) => [r.id, r.n]))
    for (const [i, e] of events.entries())
      assert.equal(storedDataBytes(all[i]!), stored.get(e.event_id), `data ${JSON.stringify(all[i]).slice(0, 300)}`)
  })
})
