import assert from 'node:assert/strict'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { after, before, describe, test } from 'node:test'
import { AppendNotifier, EVENTS_CHANNEL, NOTIFY_TRACE, ROLES } from '@eventplane/store-pg'
import { createTestDatabase, eventually, type TestDatabase } from '@eventplane/store-pg/testing'

/**
 * When the notifier's NOTIFYs start and return. Each one waits for a connection of a two-connection
 * pool whose both connections the test holds (reserved), so "in flight" lasts exactly until the test
 * lets the pool go: no timing decides the order.
 */
describe('AppendNotifier: NOTIFYs in flight', () => {
  let db: TestDatabase

  before(async () => {
    db = await createTestDatabase('ep_append_notifier')
  })
  after(async () => {
    await db.drop()
  })

  /** Pokes three times while the pool is held (gapMs 0), then releases it; the NOTIFYs' traces and when the pool was freed. */
  async function pokeWhileHeld(maxInFlight: number | undefined) {
    const sql = db.connect(ROLES.intentWriter, 2)
    const held = [await sql.reserve(), await sql.reserve()]
    const traces: { sentAt: number; at: number }[] = []
    const onTrace = (m: unknown): void => {
      traces.push(m as { sentAt: number; at: number })
    }
    subscribe(NOTIFY_TRACE.name, onTrace)
    const heard: number[] = []
    const listener = db.connect(ROLES.intentWriter, 1)
    const listening = await listener.listen(EVENTS_CHANNEL, () => heard.push(performance.now()))
    try {
      const notifier = new AppendNotifier(sql, 0, maxInFlight)
      notifier.poke()
      notifier.poke()
      notifier.poke()
      const releasedAt = performance.now()
      for (const r of held) r.release()
      // Every poke is followed by a NOTIFY sent after it: the last one too.
      await eventually(() => traces.length >= 2 && heard.length >= 1, 30_000, 'the NOTIFYs to return')
      const expected = (maxInFlight ?? 2) >= 2 ? 3 : 2
      await eventually(() => traces.length >= expected, 30_000, `${expected} NOTIFYs`)
      return { traces: [...traces].sort((a, b) => a.sentAt - b.sentAt), releasedAt, heard }
    } finally {
      unsubscribe(NOTIFY_TRACE.name, onTrace)
      await listening.unlisten()
    }
  }

  test('by default (maxInFlight 2) a poke during a NOTIFY sends another at once; a third waits for one to return', async () => {
    const { traces, releasedAt } = await pokeWhileHeld(undefined)
    assert.equal(traces.length, 3, 'three NOTIFYs: two at once, then one for the poke that found both in flight')
    const [first, second, third] = traces as [(typeof traces)[0], (typeof traces)[0], (typeof traces)[0]]
    assert.ok(first.sentAt < releasedAt && second.sentAt < releasedAt, 'the first two sent while the pool was held')
    assert.ok(third.sentAt > releasedAt, 'the third sent only after one returned')
    assert.ok(third.sentAt >= Math.min(first.at, second.at), 'never three in flight')
  })

  test('with maxInFlight 1, a poke during a NOTIFY waits for it: one in flight, one queued', async () => {
    const { traces, releasedAt } = await pokeWhileHeld(1)
    assert.equal(traces.length, 2, 'the second and third poke share one NOTIFY')
    const [first, second] = traces as [(typeof traces)[0], (typeof traces)[0]]
    assert.ok(first.sentAt < releasedAt)
    assert.ok(second.sentAt >= first.at, 'the second sent after the first returned')
  })
})
