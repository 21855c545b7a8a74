import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  type EventEnvelope,
  type ValidEnvelope,
  EventFactory,
  RESERVED_CATEGORY_PREFIX,
  isEventplaneError,
  validateEnvelope,
} from '@eventplane/core'
import { PgEventStore, ROLES, exportEvents, importEvents } from '@eventplane/store-pg'
import { type TestDatabase, createTestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

const RESERVED = stream('acme', 'deployer:3f0c2f3e-0000-4000-8000-000000000001', 'eventplane_reconciles')

const refusedAsReserved = (e: unknown): boolean => {
  assert.ok(isEventplaneError(e, 'core.invalid_name'), `core.invalid_name, got ${String(e)}`)
  assert.equal(e.details.reserved, RESERVED_CATEGORY_PREFIX)
  return true
}

describe('reserved categories: only the system writes them', () => {
  let db: TestDatabase
  let facts: PgEventStore
  let operator: PgEventStore
  let trigger: EventEnvelope
  const categories = async (): Promise<string[]> =>
    (await db.admin<{ category: string }[]>`select category from eventplane.events order by global_position`).map(
      (r) => r.category,
    )

  before(async () => {
    db = await createTestDatabase('ep_reserved')
    facts = new PgEventStore(db.connect(ROLES.factWriter, 2))
    operator = new PgEventStore(db.connect(ROLES.operator, 2))
    trigger = factoryFor('acme').intent(stream('acme', 'web'), 'deploy_requested', {})
  })
  after(() => db.drop())

  test("an application's factory refuses to build an event in a reserved category", () => {
    const app = factoryFor('acme', 'controller:deployer')
    for (const category of ['eventplane_reconciles', 'eventplane_other', 'EVENTPLANE_x'])
      for (const build of [app.intent, app.fact, app.internal])
        assert.throws(() => build.call(app, { category, id: 'x' }, 'reconcile_started', {}), refusedAsReserved)
    // A child factory of a system factory is an ordinary one.
    const child = EventFactory.systemFromEvent(trigger, { causedBy: 'controller:deployer' }).causedBy(trigger)
    assert.throws(() => child.internal(RESERVED, 'reconcile_started', {}), refusedAsReserved)
  })

  test('the store refuses any envelope not made by a system writer, and writes nothing of the batch', async () => {
    const system = EventFactory.systemFromEvent(trigger, { causedBy: 'controller:deployer' })
    const own = system.internal(RESERVED, 'reconcile_started', { controller: 'deployer', attempt: 1 })
    // Validated, but by validateEnvelope (as the gateway, an import or a parsed body are): not the system's.
    const validated = validateEnvelope({ ...own, event_id: crypto.randomUUID() })
    // A copy of the system's own envelope is not it.
    const copy = { ...own } as ValidEnvelope
    for (const batch of [[validated], [copy], [own, validated]]) {
      await assert.rejects(facts.append(RESERVED, batch), refusedAsReserved)
      await assert.rejects(operator.append(RESERVED, batch), refusedAsReserved, 'the operator role too')
    }
    assert.deepEqual(await categories(), [], 'nothing was written')
    // The system's own envelope is appended.
    const r = await facts.append(RESERVED, [own], { expectedVersion: 'no_stream' })
    assert.equal(r.nextExpectedVersion, 1)
    assert.deepEqual(await categories(), ['eventplane_reconciles'])
  })

  test("an operator's import restores reserved streams of an export (a restore is the system's, not a tenant's)", async () => {
    const lines: string[] = []
    for await (const line of exportEvents(operator, { tenant: 'acme', includeActor: true })) lines.push(line)
    assert.equal(lines.length, 1)
    // Imported again into the same log: the stored event is found identical (no refusal, nothing new).
    const result = await importEvents(operator, lines)
    assert.deepEqual(result, { imported: 0, skipped: 1, conflicts: [] })
    assert.deepEqual(await categories(), ['eventplane_reconciles'])
  })
})
