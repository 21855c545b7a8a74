import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventFactory, START, type RecordedEvent } from '@eventplane/core'
import { PgEventStore, ROLES, logStatus, streamLog } from '@eventplane/store-pg'
import { bulkLoadEvents, createTestDatabase, eventually, type TestDatabase, within } from '@eventplane/store-pg/testing'

describe('streamLog (what a rebuild reads)', () => {
  let db: TestDatabase

  before(async () => {
    db = await createTestDatabase('ep_stream_log')
    const writer = new PgEventStore(db.connect(ROLES.intentWriter, 2))
    const acme = EventFactory.forTenant('acme', { causedBy: 'user:test' })
    for (let i = 0; i < 25; i++) {
      const s = { tenant: 'acme', category: 'deployment', id: `d${i % 4}` }
      await writer.append(s, [acme.intent(s, 'scaled', { i, nested: { list: [i, 'x'] } })])
    }
    await bulkLoadEvents(db.admin, 1, 300, 7)
    await eventually(async () => (await logStatus(db.admin)).waiting === 0, 120_000, 'every event readable')
  })
  after(() => db.drop())

  test('streams exactly the events readAll returns, equal field by field, from any checkpoint', async () => {
    const sql = db.connect(ROLES.operator, 2)
    const store = new PgEventStore(sql)
    const paged: RecordedEvent[] = []
    for await (const batch of store.readAll({ from: START, batchSize: 50 })) paged.push(...batch)
    assert.equal(paged.length, 325)
    const streamed: RecordedEvent[] = []
    for await (const batch of streamLog(sql, { from: START, batchSize: 40 })) {
      assert.ok(batch.length <= 40)
      streamed.push(...batch)
    }
    assert.deepEqual(streamed, paged)
    const mid = paged[99]!
    const rest: RecordedEvent[] = []
    for await (const b of streamLog(sql, { from: { txId: mid.tx_id, position: mid.global_position } })) rest.push(...b)
    assert.deepEqual(rest, paged.slice(100))
  })

  test('holds back what committed after a transaction still open, and skips nothing once it commits', async () => {
    const sql = db.connect(ROLES.operator, 2)
    const writer = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    const f = EventFactory.forTenant('acme', { causedBy: 'user:test' })
    const streamed = async (from = START) => {
      const out: RecordedEvent[] = []
      for await (const b of streamLog(sql, { from, batchSize: 10 })) out.push(...b)
      return out
    }
    const before = await streamed()
    const last = before.at(-1)!
    const from = { txId: last.tx_id, position: last.global_position }
    const [slowS, fastS] = [
      { tenant: 'acme', category: 'deployment', id: 'slow' },
      { tenant: 'acme', category: 'deployment', id: 'fast' },
    ]
    const slow = f.intent(slowS, 'created', {})
    const fast = f.intent(fastS, 'created', {})
    const slowConn = await db.connect(ROLES.intentWriter, 1).reserve()
    try {
      await slowConn.unsafe('begin')
      await new PgEventStore(slowConn as never).append(slowS, [slow])
      await writer.append(fastS, [fast])
      assert.deepEqual(await streamed(from), [], 'nothing past the open transaction, not the event committed after it')
      await slowConn.unsafe('commit')
    } finally {
      await slowConn.unsafe('rollback').catch(() => {})
      slowConn.release()
    }
    await eventually(async () => (await streamed(from)).length === 2, 30_000, 'both events')
    assert.deepEqual(
      (await streamed(from)).map((e) => e.event_id),
      [slow.event_id, fast.event_id],
    )
  })

  test('a consumer that stops after its first batch closes the cursor: the pool’s one connection serves the next query', async () => {
    const sql = db.connect(ROLES.operator, 1)
    let batches = 0
    for await (const batch of streamLog(sql, { from: START, batchSize: 10 })) {
      assert.equal(batch.length, 10)
      batches++
      break
    }
    assert.equal(batches, 1)
    // With the cursor left open its statement would keep the connection, and this query would wait for it.
    const [row] = await within(
      sql<{ n: number }[]>`select count(*)::int as n from eventplane.events`,
      10_000,
      'the next query on the pool’s one connection (is the cursor left open?)',
    )
    assert.ok(row!.n >= 325, `${row!.n} events`)
  })
})
