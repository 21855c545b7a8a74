import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventFactory, isEventplaneError } from '@eventplane/core'
import { PgEventStore, REDACTED_ACTOR, ROLES, exportEvents, importEvents } from '@eventplane/store-pg'
import { createTestDatabase, eventually, type TestDatabase } from '@eventplane/store-pg/testing'

async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = []
  for await (const line of it) out.push(line)
  return out
}

describe('export and import', () => {
  let source: TestDatabase
  let target: TestDatabase
  let correlationId: string
  before(async () => {
    ;[source, target] = await Promise.all([createTestDatabase('ep_export'), createTestDatabase('ep_import')])
    const intents = new PgEventStore(source.connect(ROLES.intentWriter, 2))
    const facts = new PgEventStore(source.connect(ROLES.factWriter, 2))
    const s = { tenant: 'acme', category: 'deployment', id: 'web' }
    const intent = EventFactory.forTenant('acme', { causedBy: 'user:alice' }).intent(s, 'create', { replicas: 2 })
    correlationId = intent.correlation_id
    await intents.append(s, [intent])
    const child = EventFactory.fromEvent(intent, { causedBy: 'controller:deployments' })
    await facts.append(s, [child.fact(s, 'scheduled', { node: 'n1' })])
    const other = { tenant: 'acme', category: 'deployment', id: 'api' }
    await intents.append(other, [
      EventFactory.forTenant('acme', { causedBy: 'user:bob' }).intent(other, 'create', { replicas: 1 }),
    ])
    const globex = { tenant: 'globex', category: 'deployment', id: 'web' }
    await intents.append(globex, [
      EventFactory.forTenant('globex', { causedBy: 'user:eve' }).intent(globex, 'create', {}),
    ])
  })
  after(async () => {
    await Promise.all([source?.drop(), target?.drop()])
  })

  test('an export redacts caused_by by default, keeps lineage, and holds only the selected tenant', async () => {
    const operator = new PgEventStore(source.connect(ROLES.operator, 2))
    let lines: string[] = []
    await eventually(
      async () => (lines = await collect(exportEvents(operator, { tenant: 'acme' }))).length === 3,
      30_000,
      'export sees 3 events',
    )
    const events = lines.map((l) => JSON.parse(l))
    assert.equal(events.length, 3)
    assert.ok(events.every((e) => e.tenant_id === 'acme' && e.caused_by === REDACTED_ACTOR))
    assert.ok(lines.every((l) => !l.includes('alice') && !l.includes('bob')))
    const chain = events.filter((e) => e.correlation_id === correlationId)
    assert.equal(chain.length, 2)
    assert.equal(chain[1].causation_id, chain[0].event_id)
  })

  test('a correlation chain restored into an empty database keeps ids and lineage; re-import skips; changed content is refused', async () => {
    const sourceOperator = new PgEventStore(source.connect(ROLES.operator, 2))
    const lines = await collect(exportEvents(sourceOperator, { tenant: 'acme', correlationId, includeActor: true }))
    const targetOperator = new PgEventStore(target.connect(ROLES.operator, 2))
    assert.deepEqual(await importEvents(targetOperator, lines), { imported: 2, skipped: 0, conflicts: [] })
    assert.deepEqual(await importEvents(targetOperator, lines), { imported: 0, skipped: 2, conflicts: [] })
    const restored = await targetOperator.readCorrelation('acme', correlationId)
    const original = await sourceOperator.readCorrelation('acme', correlationId)
    const strip = (e: (typeof original)[number]) => [
      e.event_id,
      e.correlation_id,
      e.causation_id,
      e.caused_by,
      e.type,
      e.data,
      e.occurred_at,
    ]
    assert.deepEqual(restored.map(strip), original.map(strip))

    const tampered = JSON.parse(lines[1]!)
    tampered.data = { node: 'evil' }
    const result = await importEvents(targetOperator, [JSON.stringify(tampered)])
    assert.deepEqual(
      result.conflicts.map((c) => c.eventId),
      [tampered.event_id],
    )
    assert.deepEqual((await targetOperator.readCorrelation('acme', correlationId))[1]!.data, { node: 'n1' })
  })

  test('an import that fails for another reason than a conflict stops with that error, not a reported conflict', async () => {
    // An intent writer may append the chain's intent but not its fact: the import must fail with
    // store.forbidden (the operator reruns it with the right role), never count the fact as a conflict.
    const sourceOperator = new PgEventStore(source.connect(ROLES.operator, 2))
    const lines = await collect(exportEvents(sourceOperator, { tenant: 'acme', correlationId, includeActor: true }))
    const fact = JSON.parse(lines[1]!) as { event_id: string; kind: string }
    assert.equal(fact.kind, 'fact')
    const writer = new PgEventStore(target.connect(ROLES.intentWriter, 1))
    await assert.rejects(importEvents(writer, lines), (e) => isEventplaneError(e, 'store.forbidden'))
  })

  test('a malformed line is refused with a typed error naming the line', async () => {
    const operator = new PgEventStore(target.connect(ROLES.operator, 1))
    await assert.rejects(
      importEvents(operator, ['{"event_id": 1}']),
      (e) => isEventplaneError(e, 'core.invalid_envelope') && /line 1/.test((e as Error).message),
    )
    await assert.rejects(importEvents(operator, ['not json']), (e) => isEventplaneError(e, 'core.invalid_envelope'))
  })
})
