import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { AppendNotifier, EVENTS_CHANNEL, ROLES } from '@eventplane/store-pg'
import { createTestDatabase, eventually, type TestDatabase } from '@eventplane/store-pg/testing'
import type { Sql } from 'postgres'

describe("AppendNotifier inside the caller's transaction", () => {
  let db: TestDatabase

  before(async () => {
    db = await createTestDatabase('ep_append_notifier_tx')
  })
  after(async () => {
    await db.drop()
  })

  test('a poke is a plain NOTIFY delivered at commit: the transaction keeps its durable commit setting', async () => {
    const heard: number[] = []
    const listener = db.connect(ROLES.intentWriter, 1)
    const listening = await listener.listen(EVENTS_CHANNEL, () => heard.push(1))
    try {
      const sql = db.connect(ROLES.intentWriter, 1)
      await sql.begin(async (tx) => {
        new AppendNotifier(tx as unknown as Sql, 0).poke()
        // Statements of one transaction run in order: this one runs after the NOTIFY.
        const [row] = await tx<{ mode: string }[]>`select current_setting('synchronous_commit') as mode`
        assert.equal(row?.mode, 'on', "the notifier changed the caller's commit setting")
        assert.equal(heard.length, 0, 'nothing is delivered before the transaction commits')
      })
      await eventually(() => heard.length === 1, 10_000, 'the NOTIFY after commit')
    } finally {
      await listening.unlisten()
    }
  })

  test('a NOTIFY that fails (in an aborted transaction) is dropped, never an unhandled rejection', async () => {
    const unhandled: unknown[] = []
    const onUnhandled = (e: unknown): void => {
      unhandled.push(e)
    }
    process.on('unhandledRejection', onUnhandled)
    try {
      const sql = db.connect(ROLES.intentWriter, 1)
      await sql
        .begin(async (tx) => {
          await tx`select 1 / 0`.catch(() => {})
          new AppendNotifier(tx as unknown as Sql, 0).poke()
          // Runs after the NOTIFY, which failed like it (25P02: the transaction is aborted).
          await assert.rejects(tx`select 1`)
          await new Promise((resolve) => setImmediate(resolve))
        })
        .catch(() => {})
      assert.deepEqual(unhandled, [])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })
})
