import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Sql } from 'postgres'
import { connectPg } from '../src/connect.ts'
import { type TestDatabase, closePool, createTestDatabase } from '../src/testing/index.ts'

/**
 * Three rows, then division by zero on the fourth, computed per row: a constant `1/0` (`case when g < 4 then g
 * else 1/0 end`) is folded by the planner and fails before any row is sent.
 */
const FAILS_AFTER_3_ROWS = 'select 1 / (4 - g) as v from generate_series(1, 10) g'

/**
 * postgres.js 3.4.9 counts a query's rows in a counter of the connection that only CommandComplete resets: a
 * query whose ErrorResponse came after some DataRows left it at their number, and the next query on the same
 * connection put its rows after as many holes (porsager/postgres#1181; its length wrong, `count` right).
 * `patches/postgres@3.4.9.patch` resets the counter on ErrorResponse.
 */
describe('a query that fails after some rows of its result', () => {
  let db: TestDatabase
  /** One connection: the next query runs on the connection that saw the failure. */
  let pool: Sql
  before(async () => {
    db = await createTestDatabase('ep_pg_mid_result', { migrate: false })
    pool = connectPg(db.url, { max: 1 })
  })
  after(async () => {
    await closePool(pool)
    await db.drop()
  })

  test('really sends rows before its error (else the cases below prove nothing)', async () => {
    let rows = 0
    await assert.rejects(
      pool.unsafe(FAILS_AFTER_3_ROWS).forEach(() => void rows++),
      (e) => (e as { code?: string }).code === '22012',
    )
    assert.equal(rows, 3)
  })

  test('the next query on the same connection gets exactly its own rows', async () => {
    await assert.rejects(pool.unsafe(FAILS_AFTER_3_ROWS), (e) => (e as { code?: string }).code === '22012')
    const next = await pool<{ x: number }[]>`select x from generate_series(1, 5) x`
    // A copy: deepEqual of a sparse array against this fails, and so does the length.
    assert.deepEqual([...next], [{ x: 1 }, { x: 2 }, { x: 3 }, { x: 4 }, { x: 5 }])
    assert.equal(next.length, 5)
  })

  test('so does a query pipelined behind it, sent before its error came back', async () => {
    const failing = pool.unsafe(FAILS_AFTER_3_ROWS).execute()
    const next = pool<{ x: number }[]>`select x from generate_series(1, 5) x`.execute()
    await assert.rejects(failing, (e) => (e as { code?: string }).code === '22012')
    const rows = await next
    assert.deepEqual([...rows], [{ x: 1 }, { x: 2 }, { x: 3 }, { x: 4 }, { x: 5 }])
    assert.equal(rows.length, 5)
  })
})
