import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import postgres from 'postgres'
import {
  type OpenTransaction,
  PgEventStore,
  ROLES,
  logStatus,
  openTransactions,
  stuckTransactions,
  transactionsHoldingLog,
} from '@eventplane/store-pg'
import { type HeldXid, eventually, holdXid, useForeignXid, useTestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

// The operations signals (status, the relay's guard and gauge) classify every
// open transaction by the horizon's rule (0018): another database's never
// holds this log's read back, this database's does. The held transactions
// belong to the superuser; the lookers are the operator and relay roles.

/** backend_xid (and so OpenTransaction.xid) is the 32-bit form of an xid8. */
const xid32 = (xid8: string | bigint) => (BigInt(xid8) & 0xffffffffn).toString()
const find = (list: readonly OpenTransaction[], held: { xid: string }) => list.find((t) => t.xid === xid32(held.xid))

describe('open transactions, classified by whether they hold this log back', () => {
  const db = useTestDatabase('ep_open_tx')
  // A second database with a transaction holding an xid, open for the whole suite and older than anything below.
  const other = useForeignXid('ep_open_tx_other')
  let writer: PgEventStore
  before(async () => {
    writer = new PgEventStore(db.connect(ROLES.intentWriter, 1))
  })

  test("another database's transaction is listed as not holding the log, never stuck; this database's holds it, and the oldest holder is the horizon", async () => {
    const f = factoryFor('acme')
    await writer.append(stream('acme', 'a1'), [f.intent(stream('acme', 'a1'), 'created', { n: 1 })])
    const mine = await holdXid(db.admin)
    try {
      // Committed after this database's xid: it waits, so the horizon looks the sessions up (0018).
      await writer.append(stream('acme', 'a2'), [f.intent(stream('acme', 'a2'), 'created', { n: 2 })])
      const operator = db.connect(ROLES.operator, 1)
      const relay = db.connect(ROLES.relay, 1)

      const all = await openTransactions(operator)
      const theirs = find(all, other)
      assert.ok(theirs, `the other database's transaction is listed: ${JSON.stringify(all)}`)
      assert.deepEqual([theirs.kind, theirs.database, theirs.holdsLog], ['session', other.db.name, false])
      const ours = find(all, mine)
      assert.ok(ours, 'this database’s transaction is listed')
      assert.deepEqual([ours.kind, ours.pid, ours.database, ours.holdsLog], ['session', mine.pid, db.name, true])

      const holding = await transactionsHoldingLog(relay)
      assert.equal(find(holding, other), undefined, 'not a holder')
      assert.ok(find(holding, mine), 'a holder')
      // The other database's transaction began first, so it is at least as old as this one whenever this one is
      // past the bound: a classification by age alone would list it in the same call.
      let stuck: OpenTransaction[] = []
      await eventually(
        async () => find((stuck = await stuckTransactions(relay, 0)), mine) !== undefined,
        30_000,
        'this database’s transaction to be older than the bound',
      )
      assert.equal(find(stuck, other), undefined, 'another database’s is never stuck')

      // The same rule as log_horizon: the oldest xid that holds the log is where the read stops. Polled only
      // for this database's autovacuum, which may hold an xid for a moment between the two statements.
      let seen = ''
      await eventually(
        async () => {
          const status = await logStatus(operator)
          // 32-bit xids: exact as numbers.
          const holders = status.openTransactions.filter((t) => t.holdsLog).map((t) => Number(t.xid))
          const oldest = Math.min(...holders)
          seen = `horizon ${status.horizon}, holders ${holders}, xmin ${status.snapshotXmin}`
          return status.waiting >= 1 && oldest.toString() === xid32(status.horizon)
        },
        30_000,
        'the oldest holder to be the horizon',
      )
      assert.ok(BigInt(other.xid) < BigInt(mine.xid), seen)
    } finally {
      await mine.release()
    }
  })

  test('a session lists its application name, one without a name null (not "")', async () => {
    // Mutation audit 2026-12-02 (mutrand): status showed an empty name as "" unseen.
    const named = postgres(db.url, { max: 1, onnotice: () => {}, connection: { application_name: 'ep-open-tx-app' } })
    const unnamed = postgres(db.url, { max: 1, onnotice: () => {}, connection: { application_name: '' } })
    const held: HeldXid[] = []
    try {
      held.push(await holdXid(named), await holdXid(unnamed))
      const all = await openTransactions(db.connect(ROLES.operator, 1))
      assert.deepEqual(
        held.map((h) => find(all, h)?.application),
        ['ep-open-tx-app', null],
      )
    } finally {
      for (const h of held) await h.release()
      await named.end()
      await unnamed.end()
    }
  })

  test('each call reads the sessions afresh, also inside one transaction', async () => {
    const conn = await db.connect(ROLES.operator, 1).reserve()
    let late: HeldXid | undefined
    try {
      // PostgreSQL keeps a transaction's first look at the sessions until it ends: a transaction that began
      // after that look has no session in it, so it would be missing from the list (or, once its xid is in a
      // later snapshot, taken for one without a session, which holds the log back).
      await conn.unsafe('begin')
      await openTransactions(conn as never)
      late = await holdXid(other.db.admin)
      const listed = find(await openTransactions(conn as never), late)
      assert.ok(listed, 'the new transaction is listed')
      assert.deepEqual([listed.kind, listed.database, listed.holdsLog], ['session', other.db.name, false])
    } finally {
      await conn.unsafe('rollback').catch(() => {})
      conn.release()
      await late?.release()
    }
  })
})
