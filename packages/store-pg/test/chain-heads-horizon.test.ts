import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { PgEventStore, ROLES, readHeads } from '@eventplane/store-pg'
import { holdStream, useTestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

// Heads name the log position they cover (0011, 0019 chain_heads): every
// stream's head is its last event at or before that position, never an event
// committed after a transaction still open, which a reader at that position
// has not seen yet.

describe('chain heads stop at the position they cover', () => {
  const db = useTestDatabase('ep_heads_horizon')

  test('events committed after a transaction still open are in no head until it ends', async () => {
    const store = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    const reader = db.connect(ROLES.reader, 1)
    const f = factoryFor('acme')
    const [early, late, held] = [stream('acme', 'early'), stream('acme', 'late'), stream('acme', 'held')]
    const [first] = (await store.append(early, [f.intent(early, 'created', {})])).events
    const hold = await holdStream(db.admin, held)
    try {
      await store.append(early, [f.intent(early, 'scaled', {})])
      await store.append(late, [f.intent(late, 'created', {})])
      const heads = await readHeads(reader, 'acme')
      assert.equal(heads.global_position, first!.position)
      assert.deepEqual(
        heads.streams.map((h) => `${h.stream_id}@${h.version}`),
        ['early@1'],
      )
    } finally {
      await hold.release()
    }
    const after = await readHeads(reader, 'acme')
    assert.deepEqual(
      after.streams.map((h) => `${h.stream_id}@${h.version}`),
      ['early@2', 'late@1'],
    )
  })
})
