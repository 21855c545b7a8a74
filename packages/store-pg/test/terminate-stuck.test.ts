import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { Sql } from 'postgres'
import { ROLES, terminateStuckTransactions } from '@eventplane/store-pg'
import { eventually, holdXidInPsql, useTestDatabase } from '@eventplane/store-pg/testing'
import { holdTransaction } from '../src/testing/hold-transaction.ts'

// What the relay's guard may end (migrations/0007): this database's non-superuser sessions whose transaction
// holds an xid older than the bound. The guard role may not signal a superuser's backend (PostgreSQL refuses
// with an error), so a superuser's old transaction must be left out of the call, not fail it.

/** A transaction on its own session of `pool` that has taken an xid: its backend's pid. */
function heldXid(pool: Sql) {
  return holdTransaction(pool, async (session) => {
    const [row] = await session<{ pid: number }[]>`select pg_backend_pid() as pid, pg_current_xact_id()`
    return { pid: row!.pid, session }
  })
}

describe('terminateStuckTransactions', () => {
  const db = useTestDatabase('ep_terminate_stuck')

  test("ends a stuck application session and leaves a superuser's older one alone, without failing on it", async () => {
    const superuser = await heldXid(db.admin)
    // The session to be terminated is psql's: postgres.js throws an uncatchable error when a session it holds in a
    // transaction is terminated and used again (its rollback; porsager/postgres#1208). That failed this test at load 15.
    const reader = await holdXidInPsql(db.roleUrl(ROLES.reader))
    try {
      // The bound is an age: wait until both transactions are past it.
      await eventually(async () => {
        const [row] = await db.admin<{ n: number }[]>`
          select count(*)::int as n from pg_stat_activity
           where pid in (${superuser.pid}, ${reader.pid}) and xact_start < clock_timestamp() - interval '1.2 seconds'`
        return row!.n === 2
      })
      const ended = await terminateStuckTransactions(db.connect(ROLES.relay, 1), 1000)
      assert.deepEqual(
        ended.map((t) => [t.pid, t.role, t.terminated]),
        [[reader.pid, ROLES.reader, true]],
      )
      const [alive] = await superuser.session<{ n: number }[]>`select 1 as n`
      assert.equal(alive!.n, 1, "the superuser's transaction goes on")
      await eventually(
        async () => (await db.admin`select 1 from pg_stat_activity where pid = ${reader.pid}`).length === 0,
        10_000,
        "the reader's session to end",
      )
    } finally {
      await superuser.release()
      reader.release()
    }
  })
})
