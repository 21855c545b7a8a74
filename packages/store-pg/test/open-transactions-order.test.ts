import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { ROLES, openTransactions } from '@eventplane/store-pg'
import { eventually, holdXid, useTestDatabase } from '@eventplane/store-pg/testing'

/** backend_xid (and so OpenTransaction.xid) is the 32-bit form of an xid8. */
const xid32 = (xid8: string) => (BigInt(xid8) & 0xffffffffn).toString()

describe('open transactions are listed oldest first', () => {
  const db = useTestDatabase('ep_open_tx_order')

  test('of two held transactions of this database, the older is listed before the younger', async () => {
    const older = await holdXid(db.admin)
    try {
      // Pacing only: the younger begins a few milliseconds later, so the ages (whole ms) differ.
      await eventually(async () => {
        const [row] = await db.admin<{ later: boolean }[]>`
          select clock_timestamp() > xact_start + interval '5 ms' as later
            from pg_stat_activity where pid = ${older.pid}`
        return row?.later === true
      })
      const younger = await holdXid(db.admin)
      try {
        const list = await openTransactions(db.connect(ROLES.operator, 1))
        const index = (xid: string) => list.findIndex((t) => t.xid === xid32(xid))
        assert.ok(index(older.xid) >= 0 && index(younger.xid) >= 0, JSON.stringify(list))
        assert.ok(index(older.xid) < index(younger.xid), `older first: ${JSON.stringify(list)}`)
        const ages = list.filter((t) => t.ageMs !== null).map((t) => t.ageMs!)
        assert.deepEqual(
          ages,
          [...ages].sort((a, b) => b - a),
          'every listed age, largest first',
        )
      } finally {
        await younger.release()
      }
    } finally {
      await older.release()
    }
  })
})
