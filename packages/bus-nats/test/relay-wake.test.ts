import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import { EventFactory, compareCheckpoints } from '@eventplane/core'
import { PgEventStore, ROLES, loadRelayCheckpoint } from '@eventplane/store-pg'
import { activeRelayCheckpointWrites } from '@eventplane/store-pg/testing'
import { Relay } from '../src/relay.ts'
import { eventually, useWatchedBus, within } from './fixtures.ts'

describe('relay wake-up: what a new event waits for', () => {
  const bus = useWatchedBus('ep_relay_wake')
  let intents: PgEventStore
  const f = EventFactory.forTenant('acme', { causedBy: 'user:test' })

  const appendOne = async (id: string) => {
    const s = { tenant: 'acme', category: 'deployment', id }
    const [event] = (await intents.append(s, [f.intent(s, 'scaled', { id })])).events
    return event!
  }

  before(async () => {
    intents = new PgEventStore(bus.db.connect(ROLES.intentWriter, 2))
  })

  test("an event appended while the relay's checkpoint write is blocked is published without waiting for that write", async () => {
    // No lease check or poll while the write is blocked (both would queue behind it on the lease session).
    const relay = new Relay({ sql: bus.db.connect(ROLES.relay, 3), nc: bus.nc, name: 'main', pollIntervalMs: 60_000 })
    relay.start()
    const blocker = await bus.db.admin.reserve()
    try {
      await eventually(() => relay.state === 'active', 'the relay to be active')
      const first = await appendOne('first')
      const firstAt = { txId: first.txId, position: first.position }
      await eventually(
        async () => compareCheckpoints(await loadRelayCheckpoint(bus.db.admin, 'main'), firstAt) >= 0,
        'the first checkpoint to be stored',
      )

      // Block every checkpoint write. LOCK TABLE takes no transaction id, so the log is not held back by it.
      await blocker`begin`
      await blocker`lock table eventplane.relay_checkpoints in exclusive mode`
      const [held] = await blocker<{ xid: string | null }[]>`select pg_current_xact_id_if_assigned()::text as xid`
      assert.equal(held?.xid, null, 'the blocking transaction must not hold back the gap-safe read')

      // The second event's checkpoint write now waits for the lock...
      const second = await appendOne('second')
      await eventually(() => bus.received.has(second.eventId), 'the second event on the bus', 4000)
      await eventually(
        async () => (await activeRelayCheckpointWrites(bus.db.admin, bus.db.name)).length === 1,
        "the relay's checkpoint write to wait for the lock",
        4000,
      )
      // ...and the third must still be published while it waits. The lease session gives a statement
      // 5 s before it is replaced; a relay that waited for its checkpoint write would not publish before that.
      const third = await appendOne('third')
      await eventually(() => bus.received.has(third.eventId), 'the third event on the bus while the write waits', 3000)
      assert.equal(
        compareCheckpoints(await loadRelayCheckpoint(bus.db.admin, 'main'), firstAt),
        0,
        'the stored checkpoint is still the first event: the write was blocked all along',
      )

      await blocker`commit`
      const thirdAt = { txId: third.txId, position: third.position }
      await eventually(
        async () => compareCheckpoints(await loadRelayCheckpoint(bus.db.admin, 'main'), thirdAt) === 0,
        'the checkpoint to catch up with the third event once the lock is gone',
      )
    } finally {
      await blocker`rollback`.catch(() => {})
      blocker.release()
      await within(relay.stop(), 15_000, 'relay stop')
    }
    assert.equal(relay.stats.published, 3)
  })
})
