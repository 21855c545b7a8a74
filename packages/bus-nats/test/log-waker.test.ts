import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventFactory } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { silentLogger } from '../src/logger.ts'
import { LogWaker } from '../src/pg-listener.ts'
import { RELAY_TRACE } from '../src/relay-trace.ts'

/**
 * The relay's wake-up on PostgreSQL's LISTEN (pg-listener.ts), alone: a
 * notification is never lost between a read and the next wait, one wakes
 * one wait, and (re)establishing LISTEN wakes the reader once, for the
 * appends it may have missed while it was not listening.
 */
describe('LogWaker', () => {
  let db: TestDatabase
  let store: PgEventStore
  let waker: LogWaker
  const f = EventFactory.forTenant('acme', { causedBy: 'user:test' })
  const stream = { tenant: 'acme', category: 'deployment', id: 'w' }

  /** Appends one event and resolves once its notification has reached the waker (nobody waiting). */
  async function appendAndNotified(): Promise<void> {
    let arrived!: () => void
    const seen = new Promise<void>((resolve) => (arrived = resolve))
    const onWake = () => arrived()
    RELAY_TRACE.wake.subscribe(onWake)
    try {
      await store.append(stream, [f.intent(stream, 'scaled', { n: 1 })])
      await seen
    } finally {
      RELAY_TRACE.wake.unsubscribe(onWake)
    }
  }

  before(async () => {
    db = await createTestDatabase('ep_log_waker')
    store = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    waker = new LogWaker(db.connect(ROLES.relay, 2), silentLogger)
  })
  after(async () => {
    await waker?.unlisten()
    await db?.drop()
  })

  test('establishing LISTEN wakes the next wait once: appends made before it are read', async () => {
    await waker.listen()
    assert.equal(waker.listening, true)
    assert.equal(await waker.wait(10_000), 'notified', 'woken for what may have been appended before LISTEN')
    assert.equal(await waker.wait(1), 'timeout', 'once, not again')
  })

  test('a notification that arrives while nobody waits wakes the next wait at once', async () => {
    await appendAndNotified()
    assert.equal(await waker.wait(10_000), 'notified')
    assert.equal(await waker.wait(1), 'timeout', 'the remembered notification is used up')
  })

  test('a notification while a wait is pending wakes it, and only it', async () => {
    const waiting = waker.wait(10_000)
    await appendAndNotified()
    assert.equal(await waiting, 'notified')
    assert.equal(await waker.wait(1), 'timeout', 'the next wait is not woken by the same notification')
  })
})
