import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type Checkpoint, type RecordedEvent, START } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { createTestDatabase, eventually, type TestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

async function readCategory(store: PgEventStore, tenant: string, category: string, from: Checkpoint = START) {
  const out: RecordedEvent[] = []
  for await (const batch of store.readCategory(tenant, category, { from, batchSize: 2 })) out.push(...batch)
  return out
}

describe('browsing: listStreams and readCategory', () => {
  let db: TestDatabase
  let writer: PgEventStore
  let reader: PgEventStore
  const acme = factoryFor('acme')
  const append = (tenant: string, id: string, category: string, n = 1) =>
    writer.append(
      stream(tenant, id, category),
      Array.from({ length: n }, (_, i) => factoryFor(tenant).intent({ category, id }, 'noted', { i })),
    )

  before(async () => {
    db = await createTestDatabase('ep_browse')
    writer = new PgEventStore(db.connect(ROLES.intentWriter, 2))
    reader = new PgEventStore(db.connect(ROLES.reader, 2))
    await append('acme', 'web', 'deployment', 3)
    await append('acme', 'api', 'deployment', 1)
    await append('acme', 'alice', 'user', 2)
    await append('globex', 'web', 'deployment', 5)
    await append('globex', 'zed', 'audit', 1)
  })
  after(() => db.drop())

  test('listStreams lists one tenant’s streams with their last version, in (category, id) order, paged', async () => {
    const all = await reader.listStreams('acme')
    assert.deepEqual(
      all.map((s) => [s.stream.category, s.stream.id, s.version, s.lastType]),
      [
        ['deployment', 'api', 1, 'noted'],
        ['deployment', 'web', 3, 'noted'],
        ['user', 'alice', 2, 'noted'],
      ],
    )
    const page1 = await reader.listStreams('acme', { limit: 2 })
    const page2 = await reader.listStreams('acme', { limit: 2, after: page1.at(-1)!.stream })
    assert.deepEqual(
      [...page1, ...page2].map((s) => s.stream.id),
      ['api', 'web', 'alice'],
    )
    const deployments = await reader.listStreams('acme', { category: 'deployment' })
    assert.deepEqual(
      deployments.map((s) => s.stream.id),
      ['api', 'web'],
    )
    const globex = await reader.listStreams('globex')
    assert.deepEqual(
      globex.map((s) => [s.stream.category, s.stream.id, s.version]),
      [
        ['audit', 'zed', 1],
        ['deployment', 'web', 5],
      ],
    )
  })

  test('readCategory reads one category of one tenant in log order, and pages from a checkpoint', async () => {
    let events: RecordedEvent[] = []
    await eventually(async () => {
      events = await readCategory(reader, 'acme', 'deployment')
      return events.length === 4
    })
    assert.ok(events.every((e) => e.tenant_id === 'acme' && e.stream.category === 'deployment'))
    assert.deepEqual(
      events.map((e) => `${e.stream.id}:${e.stream_version}`),
      ['web:1', 'web:2', 'web:3', 'api:1'],
    )
    const second = events[1]!
    const rest = await readCategory(reader, 'acme', 'deployment', {
      txId: second.tx_id,
      position: second.global_position,
    })
    assert.deepEqual(
      rest.map((e) => e.event_id),
      events.slice(2).map((e) => e.event_id),
    )
    assert.deepEqual(await readCategory(reader, 'acme', 'audit'), [])
  })

  test('readCategory never skips a transaction that commits after a later one', async () => {
    const slowConn = await db.connect(ROLES.intentWriter, 1).reserve()
    await slowConn.unsafe('begin')
    const slow = acme.intent({ category: 'job', id: 'slow' }, 'noted', {})
    await new PgEventStore(slowConn as never).append(stream('acme', 'slow', 'job'), [slow])
    const fast = acme.intent({ category: 'job', id: 'fast' }, 'noted', {})
    await writer.append(stream('acme', 'fast', 'job'), [fast])

    const whileOpen = await readCategory(reader, 'acme', 'job')
    assert.deepEqual(whileOpen, [], 'the committed later transaction waits for the open one')
    await slowConn.unsafe('commit')
    slowConn.release()
    let after: RecordedEvent[] = []
    await eventually(async () => {
      after = await readCategory(reader, 'acme', 'job')
      return after.length === 2
    })
    assert.deepEqual(
      after.map((e) => e.event_id),
      [slow.event_id, fast.event_id],
    )
  })

  test('names are validated before any SQL runs', async () => {
    await assert.rejects(reader.listStreams('ac.me'), { code: 'core.invalid_name' })
    await assert.rejects(reader.listStreams('acme', { category: 'a b' }), { code: 'core.invalid_name' })
    await assert.rejects(readCategory(reader, 'acme', '>'), { code: 'core.invalid_name' })
  })
})
