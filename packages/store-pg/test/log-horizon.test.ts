import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import postgres, { type Sql } from 'postgres'
import { type Checkpoint, type RecordedEvent, START } from '@eventplane/core'
import { PgEventStore, ROLES, logStatus, readHeads, streamLog } from '@eventplane/store-pg'
import {
  type HeldXid,
  closePool,
  eventually,
  holdXid,
  useForeignXid,
  useTestDatabase,
} from '@eventplane/store-pg/testing'
import { chainHeadsSql } from '../src/sql/chain-heads.ts'
import { readAllSql } from '../src/sql/read-all.ts'
import { readCategorySql } from '../src/sql/read-category.ts'
import { LOG_HORIZON, functionCallsOf } from './function-calls.ts'
import { factoryFor, stream } from './helpers.ts'

// The gap-safe horizon (0018): a transaction of another database of the same
// cluster never holds this log's read back; one of this database still does,
// and nothing is skipped when it ends. The held transactions belong to the
// superuser; the readers are the relay, reader and operator roles, so the
// horizon sees other roles' sessions.

async function readAll(store: PgEventStore, from: Checkpoint = START, tenant?: string): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = []
  for await (const batch of store.readAll({ from, batchSize: 2, tenant })) out.push(...batch)
  return out
}

async function readCategory(store: PgEventStore, tenant: string, category: string): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = []
  for await (const batch of store.readCategory(tenant, category, { batchSize: 2 })) out.push(...batch)
  return out
}

const ids = (events: readonly RecordedEvent[]) => events.map((e) => e.event_id)

describe('the gap-safe horizon: only transactions that can write into this log hold it back', () => {
  const db = useTestDatabase('ep_horizon')
  // An empty second database with a transaction that holds an xid, open for the whole suite: every
  // event below is appended after it, so the cluster-wide rule would return none of them.
  const other = useForeignXid('ep_horizon_other')
  let writer: PgEventStore
  let relay: PgEventStore
  let reader: PgEventStore
  before(async () => {
    writer = new PgEventStore(db.connect(ROLES.intentWriter))
    relay = new PgEventStore(db.connect(ROLES.relay))
    reader = new PgEventStore(db.connect(ROLES.reader, 2))
  })

  test("another database's open transaction holds back no reader of this log", async () => {
    const f = factoryFor('acme')
    const event = f.intent(stream('acme', 'a1'), 'created', { n: 1 })
    const [appended] = (await writer.append(stream('acme', 'a1'), [event])).events
    assert.ok(BigInt(other.xid) < appended!.txId, 'the other database took its xid first')

    // Each reader is polled, only for this database's own autovacuum / autoanalyze, which may hold an xid
    // for a moment at any point (a fresh database): the other database's transaction stays open throughout,
    // so a reader it held back would never return the event.
    const returns = (what: string, read: () => Promise<boolean>) => eventually(read, 30_000, what)
    await returns('relay readAll', async () => ids(await readAll(relay)).includes(event.event_id))
    await returns('tenant readAll', async () => ids(await readAll(reader, START, 'acme')).includes(event.event_id))
    await returns('readCategory', async () =>
      ids(await readCategory(reader, 'acme', 'deployment')).includes(event.event_id),
    )
    const rebuildSql = db.connect(ROLES.relay, 1)
    await returns('streamLog (rebuilds)', async () => {
      const streamed: string[] = []
      for await (const batch of streamLog(rebuildSql, { from: START })) streamed.push(...ids(batch))
      return streamed.includes(event.event_id)
    })
    const headsSql = db.connect(ROLES.reader, 1)
    await returns(
      'chain heads reach the event',
      async () => (await readHeads(headsSql, 'acme')).tx_id >= appended!.txId,
    )
    const operatorSql = db.connect(ROLES.operator, 1)
    await returns('the log is not held back', async () => (await logStatus(operatorSql)).horizon > appended!.txId)
    const status = await logStatus(operatorSql)
    assert.ok(status.snapshotXmin <= BigInt(other.xid), 'the cluster is held back')
    // Still open: it was passed, not waited for.
    const [row] = await other.db.admin<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity where backend_xid::text = ${other.xid}`
    assert.equal(row!.n, 1)
  })

  test("this database's open transaction still holds it back, and nothing is skipped when it commits", async () => {
    const f = factoryFor('initech')
    const first = f.intent(stream('initech', 'first'), 'created', { n: 0 })
    await writer.append(stream('initech', 'first'), [first])
    await eventually(async () => ids(await readAll(relay)).includes(first.event_id), 30_000, 'the first event')
    const checkpoint = (await readAll(relay)).at(-1)!
    const from: Checkpoint = { txId: checkpoint.tx_id, position: checkpoint.global_position }

    const slowConn = await db.connect(ROLES.intentWriter, 1).reserve()
    const slow = f.intent(stream('initech', 'slow'), 'created', { n: 1 })
    const fast = f.intent(stream('initech', 'fast'), 'created', { n: 2 })
    try {
      await slowConn.unsafe('begin')
      const [slowAppended] = (await new PgEventStore(slowConn as never).append(stream('initech', 'slow'), [slow]))
        .events
      await writer.append(stream('initech', 'fast'), [fast])

      // Nothing past the open writer: not its event, not the one committed after it.
      assert.deepEqual(ids(await readAll(relay, from)), [], 'relay readAll')
      assert.deepEqual(ids(await readAll(reader, START, 'initech')), [first.event_id], 'tenant readAll')
      const status = await logStatus(db.connect(ROLES.operator, 1))
      assert.ok(status.waiting >= 1, 'the committed event waits')
      assert.ok(status.horizon <= slowAppended!.txId, `the horizon stops at the writer: ${status.horizon}`)
      await slowConn.unsafe('commit')
    } finally {
      await slowConn.unsafe('rollback').catch(() => {})
      slowConn.release()
    }
    // Then everything, from the checkpoint taken while it was open: the slow one first (older tx id).
    await eventually(async () => (await readAll(relay, from)).length === 2, 30_000, 'both events')
    assert.deepEqual(ids(await readAll(relay, from)), [slow.event_id, fast.event_id])
    assert.deepEqual(ids(await readAll(reader, START, 'initech')), [first.event_id, slow.event_id, fast.event_id])
  })
  test("the relay's cheap rule (xmin) holds back what the exact one passes, page by page as asked", async () => {
    const f = factoryFor('hooli')
    const events = [1, 2, 3].map((n) => f.intent(stream('hooli', 'h1'), 'created', { n }))
    // One transaction each: a rule never stops inside a transaction that has ended (0020,
    // horizon-floor.test.ts), so the switch below falls between two.
    for (const e of events) await writer.append(stream('hooli', 'h1'), [e])
    const text = async (rules: ('exact' | 'xmin')[]) => {
      const out: string[] = []
      const asked: string[] = []
      const horizon = () => {
        const rule = rules[Math.min(asked.length, rules.length - 1)]!
        asked.push(rule)
        return rule
      }
      for await (const batch of relay.readAllText({ batchSize: 1, horizon })) out.push(...batch.map((r) => r.event_id))
      return { out, asked }
    }
    // The other database's transaction, older than these events, is open: xmin stops before them.
    await eventually(async () => (await text(['exact'])).out.includes(events[2]!.event_id), 30_000, 'exact')
    const cheap = await text(['xmin'])
    for (const e of events) assert.ok(!cheap.out.includes(e.event_id), 'xmin passes no event after the held xid')
    // Exact for the first pages, then xmin: it stops where the rule changes, and skips nothing.
    const all = (await text(['exact'])).out
    const mixed = await text([...all.slice(0, -1).map(() => 'exact' as const), 'xmin'])
    assert.deepEqual(mixed.out, all.slice(0, -1))
    assert.equal(mixed.asked.length, all.length)
  })

  test('each statement reads the sessions afresh, also inside one transaction', async () => {
    const f = factoryFor('globex')
    const conn = await db.connect(ROLES.relay, 1).reserve()
    let late: HeldXid | undefined
    try {
      // Read committed: a new snapshot per statement. PostgreSQL keeps a transaction's first look at the
      // sessions until it ends; the horizon must not judge a later snapshot by that older look.
      await conn.unsafe('begin')
      await conn`select eventplane.log_horizon(pg_current_snapshot())`
      late = await holdXid(other.db.admin)
      const event = f.intent(stream('globex', 'g1'), 'created', { n: 1 })
      await writer.append(stream('globex', 'g1'), [event])
      const inTransaction = new PgEventStore(conn as never)
      await eventually(
        async () => ids(await readAll(inTransaction)).includes(event.event_id),
        30_000,
        'the event, read in the same transaction',
      )
    } finally {
      await conn.unsafe('rollback').catch(() => {})
      conn.release()
      await late?.release()
    }
  })
})

describe('a tenant read evaluates the horizon once', () => {
  const db = useTestDatabase('ep_horizon_once')
  const pools: Sql[] = []
  before(async () => {
    // Counted by PostgreSQL itself (track_functions, for this database's new sessions): every call of
    // log_horizon, the planner's (estimating the index condition of a bare predicate) and the executor's.
    await db.admin.unsafe(`alter database "${db.name}" set track_functions = 'all'`)
    const f = factoryFor('acme')
    await new PgEventStore(db.connect(ROLES.intentWriter, 1)).append(stream('acme', 'web'), [
      f.intent(stream('acme', 'web'), 'created', { n: 1 }),
    ])
  })
  after(async () => {
    await Promise.all(pools.map((p) => closePool(p)))
  })

  test('page, category and chain heads: once per read, prepared or not, custom plan or generic', async () => {
    const reads = {
      all: (sql: Sql) => readAllSql(sql, START, 10, 'acme'),
      category: (sql: Sql) => readCategorySql(sql, 'acme', 'deployment', START, 10),
      heads: (sql: Sql) => chainHeadsSql(sql, 'acme'),
    }
    const seen: Record<string, number[]> = {}
    // A reader (its probe is tenant-scoped by RLS) and the operator (cross-tenant); postgres.js's
    // prepared statements (custom plans for five runs, then generic ones) and unnamed ones (custom).
    for (const role of [ROLES.reader, ROLES.operator]) {
      for (const prepare of [true, false]) {
        const sql = postgres(db.roleUrl(role), { max: 1, prepare, onnotice: () => {} })
        pools.push(sql)
        for (const [name, read] of Object.entries(reads)) {
          const counts: number[] = []
          for (let i = 0; i < 8; i++) counts.push(await functionCallsOf(sql, LOG_HORIZON, read))
          seen[`${role} prepare=${prepare} ${name}`] = counts
        }
      }
    }
    assert.deepEqual(seen, Object.fromEntries(Object.keys(seen).map((k) => [k, Array(8).fill(1)])))
  })
})
