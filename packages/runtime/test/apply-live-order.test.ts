import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { PgEventStore, ROLES, type Sql } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { ProjectionEngine } from '../src/projection/engine.ts'
import { defineReducerProjection } from '../src/projection/types.ts'
import { PROJECTOR_ROLE } from '../src/roles.ts'
import { streamCounter } from './fixtures.ts'
import { factoryFor, stream } from './helpers.ts'

describe('live batches out of order', () => {
  let db: TestDatabase
  let projector: Sql
  let writer: PgEventStore

  before(async () => {
    db = await createTestDatabase('ep_live_order')
    projector = db.connect(PROJECTOR_ROLE, 2)
    writer = new PgEventStore(db.connect(ROLES.intentWriter, 1))
  })
  after(async () => {
    await db.drop()
  })

  test('a batch with an event before an earlier one of it is refused, even when the gap count would match', async () => {
    const s = stream('acme', 'web', 'order')
    const f = factoryFor('acme')
    for (let i = 0; i < 5; i++) await writer.append(s, [f.intent(s, 'scaled', { i })])
    const [e1, e2, e3, e4, e5] = await writer.readStreamToArray(s)
    assert.ok(e1 && e2 && e3 && e4 && e5)
    const projection = defineReducerProjection({
      ...streamCounter,
      name: 'test_live_order',
      filter: { categories: ['order'] },
    })
    const engine = new ProjectionEngine(projection, projector)
    await engine.init()
    assert.equal(await engine.applyLive([e1]), 1)
    // e5 then e3, e2 not delivered: two delivered, and two logged between the checkpoint and e3 (e2, e3).
    await assert.rejects(engine.applyLive([e5, e3]), (e: unknown) => isEventplaneError(e, 'runtime.checkpoint_moved'))
    const count = async () =>
      (
        await db.admin<{ count: number }[]>`
          select (state->>'count')::int as count from eventplane.projection_state where projection = ${projection.name}`
      )[0]?.count
    assert.equal(await count(), 1, 'nothing of the refused batch applied')
    await engine.resync()
    assert.equal(await engine.applyLive([e2, e3, e4, e5]), 4)
    assert.equal(await count(), 5)
  })
})
