import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, test } from 'node:test'
import type { Sql } from 'postgres'
import { ROLES, RelayLease, connectPg, loadRelayCheckpoint } from '@eventplane/store-pg'
import { activeRelayCheckpointWrites, closePool, eventually, useTestDatabase } from '@eventplane/store-pg/testing'
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

describe('test teardown and fault-test helpers', () => {
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

  test('activeRelayCheckpointWrites sees the relay checkpoint write, never the checkpoint load of the same table', async () => {
    const relayPool = db.connect(ROLES.relay, 2)
    const lease = new RelayLease(db.connect(ROLES.relay, 1), 'exact')
    try {
      assert.equal(await lease.tryAcquire(), true)
      const held = await holdTransaction(db.admin, async (s) => {
        await s`lock table eventplane.relay_checkpoints in access exclusive mode`
        return {}
      })
      let load: Promise<unknown> | undefined
      let write: Promise<unknown> | undefined
      try {
        load = loadRelayCheckpoint(relayPool, 'exact')
        await blockedOn(db.admin, db.name, 'from eventplane.relay_checkpoints')
        assert.deepEqual(await activeRelayCheckpointWrites(db.admin, db.name), [], 'the load is not a write')
        write = lease.storeCheckpoint({ txId: 7n, position: 7n }, 'stream-1')
        await blockedOn(db.admin, db.name, 'insert into eventplane.relay_checkpoints')
        assert.equal((await activeRelayCheckpointWrites(db.admin, db.name)).length, 1, 'the write is seen')
      } finally {
        await held.release()
      }
      assert.equal(await write, true)
      await load
      assert.deepEqual(await activeRelayCheckpointWrites(db.admin, db.name), [])
    } finally {
      await lease.close()
    }
  })
})
