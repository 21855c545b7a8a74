import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import { type RecordedEvent, START } from '@eventplane/core'
import { PgEventStore, ROLES, exportEvents } from '@eventplane/store-pg'
import { eventually, useTestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

async function readEverything(store: PgEventStore, batchSize = 2, tenant?: string): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = []
  for await (const batch of store.readAll({ from: START, batchSize, tenant })) out.push(...batch)
  return out
}

/** The event ids of a tenant's export, in its order. */
async function exportedIds(store: PgEventStore, tenant: string): Promise<string[]> {
  const ids: string[] = []
  for await (const line of exportEvents(store, { tenant }))
    ids.push((JSON.parse(line) as { event_id: string }).event_id)
  return ids
}

describe('readAll, the gap-safe global read', () => {
  const db = useTestDatabase('ep_readall')
  let writer: PgEventStore
  let relay: PgEventStore
  before(async () => {
    writer = new PgEventStore(db.connect(ROLES.intentWriter))
    relay = new PgEventStore(db.connect(ROLES.relay))
  })

  test('a transaction that inserted first but commits last is never skipped', async () => {
    const f = factoryFor('acme')
    const before = f.intent(stream('acme', 'a'), 'created', { n: 0 })
    await writer.append(stream('acme', 'a'), [before])

    const slowConn = await db.connect(ROLES.intentWriter, 1).reserve()
    await slowConn.unsafe('begin')
    const slow = f.intent(stream('acme', 'slow'), 'created', { n: 1 })
    await new PgEventStore(slowConn as never).append(stream('acme', 'slow'), [slow])

    const fast = f.intent(stream('acme', 'fast'), 'created', { n: 2 })
    await writer.append(stream('acme', 'fast'), [fast])

    const whileOpen = await readEverything(relay)
    assert.ok(
      whileOpen.every((e) => e.event_id !== fast.event_id),
      'a later commit must wait for the open transaction',
    )
    assert.ok(whileOpen.every((e) => e.event_id !== slow.event_id))

    await slowConn.unsafe('commit')
    slowConn.release()
    let all: RecordedEvent[] = []
    await eventually(async () => {
      all = await readEverything(relay)
      return all.some((e) => e.event_id === fast.event_id)
    })
    const ids = all.map((e) => e.event_id)
    assert.ok(ids.indexOf(slow.event_id) >= 0, 'the slow transaction is delivered')
    assert.ok(ids.indexOf(slow.event_id) < ids.indexOf(fast.event_id), 'in (tx_id, position) order')
    const keys = all.map((e) => [e.tx_id, e.global_position] as const)
    const sorted = [...keys].sort((x, y) => (x[0] === y[0] ? Number(x[1] - y[1]) : x[0] < y[0] ? -1 : 1))
    assert.deepEqual(keys, sorted)
  })

  test("a tenant's readAll and its export never return what committed after a transaction still open", async () => {
    const f = factoryFor('initech')
    const reader = new PgEventStore(db.connect(ROLES.reader, 2))
    const slowConn = await db.connect(ROLES.intentWriter, 1).reserve()
    const slow = f.intent(stream('initech', 'slow'), 'created', { n: 1 })
    const fast = f.intent(stream('initech', 'fast'), 'created', { n: 2 })
    try {
      await slowConn.unsafe('begin')
      await new PgEventStore(slowConn as never).append(stream('initech', 'slow'), [slow])
      await writer.append(stream('initech', 'fast'), [fast])

      // The later commit waits for the open transaction, on the tenant path and in an export.
      const whileOpen = {
        readAll: (await readEverything(reader, 2, 'initech')).map((e) => e.event_id),
        export: await exportedIds(reader, 'initech'),
      }
      assert.deepEqual(whileOpen, { readAll: [], export: [] })
      await slowConn.unsafe('commit')
    } finally {
      await slowConn.unsafe('rollback').catch(() => {})
      slowConn.release()
    }
    await eventually(async () => (await readEverything(reader, 2, 'initech')).length === 2)
    const expected = [slow.event_id, fast.event_id]
    assert.deepEqual(
      (await readEverything(reader, 1, 'initech')).map((e) => e.event_id),
      expected,
      'the slow transaction first: it has the older tx id',
    )
    assert.deepEqual(await exportedIds(reader, 'initech'), expected)
  })

  test('every gap-safe read pages in (tx_id, position) order: an older xid that inserted last comes first, in pages of one', async () => {
    // The older transaction takes its xid, the younger appends and commits, then the older appends: its
    // event has the older tx id but the higher position. A read ordered by position alone would page past it.
    const f = factoryFor('vandelay')
    const reader = new PgEventStore(db.connect(ROLES.reader, 2))
    const older = await db.connect(ROLES.intentWriter, 1).reserve()
    const first = f.intent(stream('vandelay', 'older'), 'created', { n: 1 })
    const second = f.intent(stream('vandelay', 'younger'), 'created', { n: 2 })
    try {
      await older.unsafe('begin')
      await older.unsafe('select pg_current_xact_id()')
      await writer.append(stream('vandelay', 'younger'), [second])
      await new PgEventStore(older as never).append(stream('vandelay', 'older'), [first])
      await older.unsafe('commit')
    } finally {
      await older.unsafe('rollback').catch(() => {})
      older.release()
    }
    await eventually(async () => (await readEverything(reader, 100, 'vandelay')).length === 2)
    const stored = await readEverything(reader, 100, 'vandelay')
    assert.ok(stored[0]!.global_position > stored[1]!.global_position, 'the older xid holds the higher position')
    const category: string[] = []
    for await (const batch of reader.readCategory('vandelay', 'deployment', { batchSize: 1 }))
      category.push(...batch.map((e) => e.event_id))
    const ids = (events: RecordedEvent[]) => events.map((e) => e.event_id)
    assert.deepEqual(
      {
        tenant: ids(await readEverything(reader, 1, 'vandelay')),
        category,
        relay: ids((await readEverything(relay, 1)).filter((e) => e.tenant_id === 'vandelay')),
      },
      {
        tenant: [first.event_id, second.event_id],
        category: [first.event_id, second.event_id],
        relay: [first.event_id, second.event_id],
      },
    )
  })

  test('a rolled-back transaction leaves a gap that is passed over', async () => {
    const f = factoryFor('acme')
    const conn = await db.connect(ROLES.intentWriter, 1).reserve()
    await conn.unsafe('begin')
    const lost = f.intent(stream('acme', 'lost'), 'created', {})
    await new PgEventStore(conn as never).append(stream('acme', 'lost'), [lost])
    await conn.unsafe('rollback')
    conn.release()
    const kept = f.intent(stream('acme', 'kept'), 'created', {})
    await writer.append(stream('acme', 'kept'), [kept])
    await eventually(async () => (await readEverything(relay)).some((e) => e.event_id === kept.event_id))
    assert.ok((await readEverything(relay)).every((e) => e.event_id !== lost.event_id))
  })

  test('reading from a checkpoint continues exactly after it, batch by batch', async () => {
    const f = factoryFor('globex')
    const s = stream('globex', 'many')
    await writer.append(
      s,
      Array.from({ length: 9 }, (_, i) => f.intent(s, 'scaled', { i })),
    )
    let all: RecordedEvent[] = []
    await eventually(
      async () => (all = await readEverything(relay, 100)).filter((e) => e.tenant_id === 'globex').length === 9,
    )
    const mid = all[3]!
    const rest: RecordedEvent[] = []
    for await (const batch of relay.readAll({ from: { txId: mid.tx_id, position: mid.global_position }, batchSize: 2 }))
      rest.push(...batch)
    assert.deepEqual(
      rest.map((e) => e.event_id),
      all.slice(4).map((e) => e.event_id),
    )
  })

  test('a tenant-scoped readAll sees only that tenant', async () => {
    const reader = new PgEventStore(db.connect(ROLES.reader, 2))
    const seen: RecordedEvent[] = []
    for await (const batch of reader.readAll({ tenant: 'globex' })) seen.push(...batch)
    assert.ok(seen.length >= 9)
    assert.ok(seen.every((e) => e.tenant_id === 'globex'))
  })

  test("a cross-tenant role's tenant-scoped readAll returns exactly that tenant's events, in order", async () => {
    // The relay's, projector's and operator's policies are USING (true): only
    // read_all_for_tenant's own tenant predicate scopes them.
    const fu = factoryFor('umbrella')
    const fh = factoryFor('hooli')
    const expected: string[] = []
    for (let i = 0; i < 3; i++) {
      const u = [
        fu.intent(stream('umbrella', `u${i}`), 'created', { i }),
        fu.intent(stream('umbrella', `u${i}`), 'scaled', { i }),
      ]
      await writer.append(stream('umbrella', `u${i}`), u)
      expected.push(...u.map((e) => e.event_id))
      await writer.append(stream('hooli', `h${i}`), [fh.intent(stream('hooli', `h${i}`), 'created', { i })])
    }
    await eventually(
      async () =>
        (await readEverything(relay, 100)).filter((e) => e.tenant_id === 'umbrella').length === expected.length,
    )
    const seen: Record<string, string[]> = {}
    for (const role of [ROLES.relay, ROLES.projector, ROLES.operator, ROLES.reader]) {
      const store = new PgEventStore(db.connect(role, 1))
      // Each read polled: an xid this database's autovacuum takes between two reads holds the gap-safe read
      // back for a moment (a CI run saw one role's read come back empty).
      await eventually(async () => {
        seen[role] = (await readEverything(store, 2, 'umbrella')).map((e) => e.event_id)
        return seen[role]!.length >= expected.length
      })
    }
    assert.deepEqual(seen, {
      [ROLES.relay]: expected,
      [ROLES.projector]: expected,
      [ROLES.operator]: expected,
      [ROLES.reader]: expected,
    })
  })
})
