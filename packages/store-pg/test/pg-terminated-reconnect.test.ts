import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import type { Sql } from 'postgres'
import { ROLES } from '../src/connect.ts'
import { typedBegin } from '../src/pg-errors.ts'
import { isPgWriteAfterClose } from '../src/pg-write-after-close.ts'
import { type TestDatabase, createTestDatabase, terminateLockWaiter, within } from '../src/testing/index.ts'

/** The advisory lock the test holds and the transaction waits on. */
const LOCK = 72_611

/**
 * postgres.js 3.4.9 writes a transaction's ROLLBACK after PostgreSQL ended its session; that write, buffered
 * behind a `setImmediate`, left the connection's write buffer and timer set, so the connection never flushed
 * again: each later connect of it sent no startup message and failed after `connect_timeout` (10 s), for good.
 * `patches/postgres@3.4.9.patch` empties the buffer when a connection opens a new socket.
 */
describe('a pooled connection whose session PostgreSQL ended inside a transaction', () => {
  let db: TestDatabase
  let pool: Sql
  /** Uncaught exceptions but the driver's ROLLBACK write (porsager/postgres#1208), which node:test would fail on. */
  const otherUncaught: unknown[] = []

  before(async () => {
    process.setUncaughtExceptionCaptureCallback((e) => {
      if (!isPgWriteAfterClose(e)) otherUncaught.push(e)
    })
    db = await createTestDatabase('ep_pg_reconnect')
    // One connection: the next query must use the very connection whose session was ended.
    pool = db.connect(ROLES.projector, 1)
  })
  after(async () => {
    process.setUncaughtExceptionCaptureCallback(null)
    await db.drop()
  })

  test('connects again at once: the next transaction on it is answered within 5 s, not after the 10 s connect timeout', async () => {
    for (let round = 1; round <= 3; round++) {
      const holder = await db.admin.reserve()
      try {
        await holder`select pg_advisory_lock(${LOCK})`
        const waiting = typedBegin(pool, async (tx) => {
          await tx`select pg_advisory_xact_lock_shared(${LOCK})`
        })
        waiting.catch(() => {})
        await terminateLockWaiter(db, ROLES.projector, `round ${round}: the transaction to wait on the held lock`)
        await holder`select pg_advisory_unlock(${LOCK})`
        await assert.rejects(waiting, (e) => isEventplaneError(e, 'store.unavailable'))
      } finally {
        holder.release()
      }
      // The very next transaction is answered, well within the connect timeout: not rejected with the ended
      // session's error (57P01), which the unreset query state of the old socket handed the new startup's first
      // query (measured: every round, without the patch's reset of query and errorResponse).
      const [row] = await within(
        typedBegin(pool, (tx) => tx<{ one: number }[]>`select 1 as one`),
        5000,
        `round ${round}: the pool to answer (connect_timeout is 10 s)`,
      )
      assert.equal(row!.one, 1)
    }
    assert.deepEqual(otherUncaught, [])
  })
})
