import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, test } from 'node:test'
import type { Sql } from 'postgres'
import { connectPg } from '@eventplane/store-pg'
import { closePool, eventually, useTestDatabase } from '@eventplane/store-pg/testing'
import { holdTransaction } from '../src/testing/hold-transaction.ts'

/** Rejects when `p` has not settled after `ms`: a hang becomes a failure, not the file's 300 s timeout. */
async function settlesWithin<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  const timeout = sleep(ms, undefined, { ref: false }).then(() => {
    throw new Error(`${what} did not settle within ${ms} ms`)
  })
  return Promise.race([p, timeout])
}

/** Waits until one backend of `database` is blocked on a lock running a statement that contains `text`. */
function blockedOn(admin: Sql, database: string, text: string): Promise<void> {
  return eventually(
    async () =>
      (
        await admin`select 1 from pg_stat_activity
          where datname = ${database} and wait_event_type = 'Lock' and strpos(query, ${text}) > 0`
      ).length === 1,
    20_000,
    `a statement with "${text}" blocked on its lock`,
  )
}

describe('test teardown helpers', () => {
  const db = useTestDatabase('ep_teardown')

  test('closePool ends a pool whose query is blocked for good, within its bound, destroying that query', async () => {
    const held = await holdTransaction(db.admin, async (s) => {
      await s`select pg_advisory_xact_lock(4242)`
      return {}
    })
    const pool = connectPg(db.url, { max: 1 })
    try {
      const blocked = pool`select pg_advisory_xact_lock(4242) as locked`.then(
        () => 'ran',
        (e: { code?: string }) => e.code,
      )
      await blockedOn(db.admin, db.name, 'pg_advisory_xact_lock(4242) as locked')
      const began = Date.now()
      await settlesWithin(closePool(pool, 1), 10_000, 'closePool on a pool with a blocked query')
      assert.ok(Date.now() - began < 10_000)
      assert.equal(await blocked, 'CONNECTION_DESTROYED', 'the blocked query was given up')
    } finally {
      await held.release()
    }
  })
})
