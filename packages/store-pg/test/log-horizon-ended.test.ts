import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import type { Sql } from 'postgres'
import { type AppendedEvent, PgEventStore, ROLES } from '@eventplane/store-pg'
import { eventually, useTestDatabase } from '@eventplane/store-pg/testing'
import { OPEN_TRANSACTIONS_QUERY } from '../src/sql/open-transactions.ts'
import { holdTransaction } from '../src/testing/hold-transaction.ts'
import { factoryFor, stream } from './helpers.ts'

// A transaction that ends between a read's snapshot and its look-up of the
// sessions (0021). The read is a cursor: its statement's snapshot is taken at
// DECLARE and the horizon (an InitPlan) is computed at the first FETCH, so
// "ended after the snapshot, before the look-up" is a step of the test, not a
// race. The cursor reads as the relay role, the gap-safe read the relay runs.

const GAP_SAFE_IDS = `declare c cursor for
  select e.event_id::text as id from eventplane.events e
   where e.tx_id < (select eventplane.log_horizon(pg_current_snapshot()))
   order by e.tx_id, e.global_position`

/** A transaction of its own on `admin` that has taken an xid (its session, to write in it): commit or release it. */
function openXid(admin: Sql) {
  return holdTransaction(admin, async (session) => {
    const [row] = await session<{ xid: string }[]>`select pg_current_xact_id()::text as xid`
    return { xid: BigInt(row!.xid), session }
  })
}

/** The gap-safe read's ids, its snapshot taken before `between` runs and its horizon computed after. */
async function readAround(relay: Sql, between: () => Promise<void>): Promise<string[]> {
  return relay.begin(async (tx) => {
    await tx.unsafe(GAP_SAFE_IDS)
    await between()
    const rows = await tx.unsafe<{ id: string }[]>('fetch all from c')
    return rows.map((r) => r.id)
  })
}

describe('the gap-safe horizon and transactions that ended after the read took its snapshot', () => {
  const db = useTestDatabase('ep_horizon_ended')
  const other = useTestDatabase('ep_horizon_ended_other', { migrate: false })
  let relay: Sql
  let writer: PgEventStore
  before(async () => {
    relay = db.connect(ROLES.relay, 1)
    writer = new PgEventStore(db.connect(ROLES.intentWriter, 1))
  })

  async function appendOne(tenant: string, id: string, store = writer): Promise<AppendedEvent> {
    const f = factoryFor(tenant)
    const [event] = (await store.append(stream(tenant, id), [f.intent(stream(tenant, id), 'created', {})])).events
    return event!
  }

  for (const how of ['commit', 'rollback']) {
    test(`another database's transaction that ends (${how}) after the snapshot no longer stops the read`, async () => {
      // This database's autovacuum may hold an xid for a moment, which rightly stops the read: try again then.
      let seen = ''
      for (let attempt = 1; attempt <= 20; attempt++) {
        const x = await openXid(other.admin)
        try {
          const event = await appendOne('acme', `ended-${how}-${attempt}`)
          assert.ok(x.xid < event.txId, 'the other database took its xid first')
          const ids = await readAround(relay, () => (how === 'commit' ? x.commit() : x.release()))
          if (ids.includes(event.eventId)) return
          seen = `attempt ${attempt}: ${ids.length} events, not the one appended after the other database's xid`
        } finally {
          await x.release()
        }
      }
      assert.fail(`the read stopped at a transaction that had ended without a row in this log (${seen})`)
    })
  }

  test('a transaction of this database that ends after the snapshot, with a row in the log, still stops it', async () => {
    const x = await openXid(db.admin)
    let slow: AppendedEvent
    let fast: AppendedEvent
    try {
      slow = await appendOne('initech', 'slow', new PgEventStore(x.session as never))
      fast = await appendOne('initech', 'fast')
      const ids = await readAround(relay, () => x.commit())
      assert.ok(!ids.includes(fast.eventId), 'nothing committed after the ended writer is read past it')
      assert.ok(!ids.includes(slow.eventId), 'its own row is not in the snapshot')
    } finally {
      await x.release()
    }
    // The next read's snapshot has both, in order: the ended writer's first.
    const next = await readAround(relay, async () => {})
    assert.deepEqual(
      next.filter((id) => id === slow.eventId || id === fast.eventId),
      [slow.eventId, fast.eventId],
    )
  })

  test('under REPEATABLE READ, a transaction of this database that commits a row after the snapshot stops it', async () => {
    // The look-up's "ended without a row" runs in the transaction's snapshot here, in which that row is not
    // visible: only the xid's visibility in it (not yet final) keeps the read from passing it and skipping the row.
    const x = await openXid(db.admin)
    let slow: AppendedEvent
    let fast: AppendedEvent
    try {
      slow = await appendOne('hooli', 'slow', new PgEventStore(x.session as never))
      fast = await appendOne('hooli', 'fast')
      const ids = await relay.begin('isolation level repeatable read', async (tx) => {
        await tx`select pg_current_snapshot()`
        await x.commit()
        const [status] = await tx<{ status: string }[]>`select pg_xact_status(${x.xid.toString()}::xid8) as status`
        assert.equal(status!.status, 'committed')
        return (await tx.unsafe<{ id: string }[]>(GAP_SAFE_IDS.replace('declare c cursor for', ''))).map((r) => r.id)
      })
      assert.ok(!ids.includes(slow.eventId), 'its own row is not in the snapshot')
      assert.ok(!ids.includes(fast.eventId), 'nothing committed after the ended writer is read past it')
    } finally {
      await x.release()
    }
  })

  test('a transaction of this database still running, its row not yet committed, stops it', async () => {
    const x = await openXid(db.admin)
    try {
      await appendOne('globex', 'pending', new PgEventStore(x.session as never))
      const after = await appendOne('globex', 'after')
      const ids = await readAround(relay, async () => {})
      assert.ok(!ids.includes(after.eventId), 'nothing committed after the running writer is read past it')
    } finally {
      await x.release()
    }
  })

  test('two running transactions of this database: the older one stops the read, not the younger', async () => {
    // The candidates are checked oldest first (0022): the first that has not ended without a row is the
    // horizon. Checked youngest first, the horizon would be the younger writer, past what the older one
    // commits later below it: a skipped event.
    const older = await openXid(db.admin)
    let younger: Awaited<ReturnType<typeof openXid>> | undefined
    try {
      const late = await appendOne('hooli', 'late', new PgEventStore(older.session as never))
      const between = await appendOne('hooli', 'between')
      younger = await openXid(db.admin)
      // A commit after the younger took its xid, so the read's snapshot lists it as running (below xmax).
      const after = await appendOne('hooli', 'after')
      assert.ok(older.xid < BigInt(between.txId) && BigInt(between.txId) < younger.xid)
      assert.ok(younger.xid < BigInt(after.txId))
      const ids = await readAround(relay, async () => {})
      assert.ok(!ids.includes(between.eventId), 'nothing committed after the older running writer is read past it')
      assert.ok(!ids.includes(after.eventId))
      await older.commit()
      await younger.release()
      // Then all three, the older writer's first (polled: this database's autovacuum may hold an xid a moment).
      const three = [late.eventId, between.eventId, after.eventId]
      let next: string[] = []
      await eventually(async () => {
        next = (await readAround(relay, async () => {})).filter((id) => three.includes(id))
        return next.length === 3
      })
      assert.deepEqual(next, three)
    } finally {
      await older.release()
      await younger?.release()
    }
  })

  test('status lists no ended transaction without a row here as holding the log; one with rows still holds it', async () => {
    const x = await openXid(other.admin)
    const y = await openXid(db.admin)
    const xid32 = (xid: bigint) => (xid & 0xffffffffn).toString()
    try {
      await appendOne('initech', 'listed', new PgEventStore(y.session as never))
      // A commit after both took their xids: a snapshot taken before any transaction completes is
      // PostgreSQL's cached one, older than both (neither in its xip, both at or above its xmax).
      await appendOne('initech', 'committed')
      const listed = await db.connect(ROLES.operator, 1).begin(async (tx) => {
        await tx.unsafe(`declare c cursor for ${OPEN_TRANSACTIONS_QUERY}`)
        await x.commit()
        await y.commit()
        return tx.unsafe<{ kind: string; backend_xid: string; holds_log: boolean }[]>('fetch all from c')
      })
      const holding = listed.filter((t) => t.holds_log).map((t) => t.backend_xid)
      assert.ok(holding.includes(xid32(y.xid)), "this database's ended writer, its row not in the snapshot, holds it")
      assert.ok(!holding.includes(xid32(x.xid)), "another database's ended transaction does not")
    } finally {
      await x.release()
      await y.release()
    }
  })
})
