import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import type { Sql } from 'postgres'
import { ROLES, connectPg } from '../src/connect.ts'
import { typedBegin } from '../src/pg-errors.ts'
import { isPgWriteAfterClose } from '../src/pg-write-after-close.ts'
import { type TestDatabase, closePool, createTestDatabase, terminateLockWaiter, within } from '../src/testing/index.ts'
import { typesQueryProxy } from './types-query-proxy.ts'

/** The advisory lock the test holds and the transaction waits on. */
const LOCK = 72_611

/**
 * postgres.js 3.4.9 writes a transaction's ROLLBACK after PostgreSQL ended its session; that write, buffered
 * behind a `setImmediate`, left the connection's write buffer and timer set, so the connection never flushed
 * again: each later connect of it sent no startup message and failed after `connect_timeout` (10 s), for good.
 * `patches/postgres@3.4.9.patch` empties the buffer when a connection opens a new socket.
 */
describe('a pooled connection whose session PostgreSQL ends', () => {
  let db: TestDatabase
  before(async () => {
    db = await createTestDatabase('ep_pg_reconnect')
  })
  after(() => db.drop())

  describe('a pooled connection whose session PostgreSQL ended inside a transaction', () => {
    let pool: Sql
    /** Uncaught exceptions but the driver's ROLLBACK write (porsager/postgres#1208), which node:test would fail on. */
    const otherUncaught: unknown[] = []

    before(async () => {
      process.setUncaughtExceptionCaptureCallback((e) => {
        if (!isPgWriteAfterClose(e)) otherUncaught.push(e)
      })
      // One connection: the next query must use the very connection whose session was ended.
      pool = db.connect(ROLES.projector, 1)
    })
    after(() => process.setUncaughtExceptionCaptureCallback(null))

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

  /**
   * postgres.js 3.4.9 runs an array-types query first on every new connection (`fetch_types`) and drops its promise
   * (porsager/postgres#1192, #1223): a session ended while that query ran became an unhandled rejection, which ends a
   * Node process that embeds the store. `patches/postgres@3.4.9.patch` handles that query's failure. The query that
   * opened the connection never reached the ended session, so the driver sends it on the next one. Ended after some
   * rows of the types' answer, the driver's row counter stood past them (porsager/postgres#1181, a sparse result for
   * the next query): the patch resets it on the session's 57P01 ErrorResponse (and before that hunk, the types query
   * the next socket runs first took that offset and reset it), so the opening query's result is whole.
   */
  describe('a connection whose session PostgreSQL ends while it fetches array types', () => {
    /** Ends the first session of a pool of one at the point `rowsFirst` names (see typesQueryProxy), checks the rest. */
    async function endWhileFetchingTypes(rowsFirst: number): Promise<void> {
      const rejections: unknown[] = []
      const onRejection = (reason: unknown): void => void rejections.push(reason)
      process.on('unhandledRejection', onRejection)
      const target = { host: '127.0.0.1', port: Number(new URL(db.url).port || 5432) }
      const terminate = async (pid: number): Promise<void> => {
        const [r] = await db.admin<{ ok: boolean }[]>`select pg_terminate_backend(${pid}) as ok`
        if (!r!.ok) throw new Error(`session ${pid} could not be terminated`)
      }
      const proxy = await typesQueryProxy(target, terminate, rowsFirst)
      const url = new URL(db.roleUrl(ROLES.projector))
      url.host = `127.0.0.1:${proxy.port}`
      // Its own pool: array parsers are per pool, so `int[]` comes back as an array only once this pool fetched them.
      const pool = connectPg(url.toString(), { max: 1 })
      const arrays = (): Promise<{ a: number[] }[]> =>
        within(pool<{ a: number[] }[]>`select array[1,2]::int[] as a`.execute(), 10_000, 'the query to be answered')
      try {
        const opening = arrays()
        await within(proxy.terminated, 10_000, 'the proxy to end the session that fetches array types')
        // Whole: one row at index 0 (deepEqual of a sparse array against this fails).
        assert.deepEqual([...(await opening)], [{ a: [1, 2] }])
        assert.equal(proxy.connections(), 2, 'the opening query was answered on a second session')
        assert.deepEqual([...(await arrays())], [{ a: [1, 2] }])
        assert.deepEqual(rejections, [], 'no unhandled rejection')
      } finally {
        process.off('unhandledRejection', onRejection)
        await closePool(pool)
        await proxy.close()
      }
    }

    test('before the query reaches PostgreSQL: no unhandled rejection; the query that opened it is answered on a new session, which fetches the types again', () =>
      endWhileFetchingTypes(0))

    test('after 3 rows of its answer: the same, and the opening query gets a whole result, not one after 3 holes (porsager/postgres#1181)', () =>
      endWhileFetchingTypes(3))
  })
})
