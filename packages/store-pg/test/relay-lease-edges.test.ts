import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { PgEventStore, ROLES, loadRelayRecord, logHoldsEvent } from '@eventplane/store-pg'
import { eventually } from '@eventplane/store-pg/testing'
import { factoryFor, stream, useLeaseSuite } from './helpers.ts'

describe('relay lease and checkpoint store at their edges', () => {
  const suite = useLeaseSuite('ep_relay_lease_edges')
  const { lease, holderPid } = suite

  test('storing the checkpoint already stored is a write under the lease, not a lost lease', async () => {
    const a = lease('same')
    assert.equal(await a.tryAcquire(), true)
    const c = { txId: 700n, position: 12n }
    assert.equal(await a.storeCheckpoint(c, 'stream-1'), true)
    assert.equal(await a.storeCheckpoint(c, 'stream-1'), true, 'the same checkpoint again')
    assert.equal(await a.held(), true)
  })

  test('the stored record reads back as written: tx id, position and the stream it refers to', async () => {
    const a = lease('record')
    assert.equal(await a.tryAcquire(), true)
    assert.equal(await a.storeCheckpoint({ txId: 9001n, position: 42n }, '2026-11-30T10:00:00.000000Z'), true)
    assert.deepEqual(await loadRelayRecord(suite.db.connect(ROLES.relay, 1), 'record'), {
      checkpoint: { txId: 9001n, position: 42n },
      streamCreated: '2026-11-30T10:00:00.000000Z',
    })
    assert.equal(await loadRelayRecord(suite.db.connect(ROLES.relay, 1), 'never-stored'), undefined)
  })

  test('a relay whose session was lost cannot release the lease its successor took', async () => {
    const a = lease('late-release')
    const b = lease('late-release')
    assert.equal(await a.tryAcquire(), true)
    const pid = await holderPid('late-release')
    await suite.db.admin`select pg_terminate_backend(${pid}::int)`
    await eventually(() => b.tryAcquire(), 10_000, 'the standby to take the lease')
    await a.release()
    assert.equal(await b.held(), true, 'B still holds the lease after A released')
    assert.equal(await lease('late-release').tryAcquire(), false, 'a third relay cannot take it')
    assert.equal(await b.storeCheckpoint({ txId: 1n, position: 1n }, 'stream-1'), true)
  })

  test('a lease statement that timed out (its row locked by a held transaction) leaves the relay without the lease', async () => {
    await suite.db.admin`insert into eventplane.relay_leases (name) values ('stalled')`
    const held = await suite.db.admin.reserve()
    try {
      await held`begin`
      await held`select 1 from eventplane.relay_leases where name = 'stalled' for update`
      const a = lease('stalled')
      await assert.rejects(a.tryAcquire(), (e) => isEventplaneError(e, 'store.unavailable'))
      await held`rollback`
      assert.equal(await a.held(), false, 'the timed-out statement took the lease on the session it kept')
      const b = lease('stalled')
      await eventually(() => b.tryAcquire(), 10_000, 'another relay to take the lease')
    } finally {
      await held`rollback`.catch(() => {})
      held.release()
    }
  })

  test('close says how its release went: released; timed_out with the row locked past the bound; failed with the session lost', async () => {
    const a = lease('close-released')
    assert.equal(await a.tryAcquire(), true)
    assert.equal(await a.close({ timeoutMs: 2000 }), 'released')
    assert.equal(await lease('close-released').tryAcquire(), true, 'the lease is free')

    const b = lease('close-locked')
    assert.equal(await b.tryAcquire(), true)
    const held = await suite.db.admin.reserve()
    try {
      await held`begin`
      await held`select 1 from eventplane.relay_leases where name = 'close-locked' for update`
      assert.equal(await b.close({ timeoutMs: 300 }), 'timed_out', 'a release waiting on the lock past its bound')
    } finally {
      await held`rollback`.catch(() => {})
      held.release()
    }

    const c = lease('close-lost')
    assert.equal(await c.tryAcquire(), true)
    await suite.db.admin`select pg_terminate_backend(${await holderPid('close-lost')}::int)`
    assert.equal(await c.close({ timeoutMs: 2000 }), 'failed', 'a release on a session already gone')
    assert.equal(await c.close({ timeoutMs: 0 }), 'skipped')
  })

  test('logHoldsEvent: the event at its tx id and position, of its tenant; nothing else', async () => {
    const s = stream('acme', 'held')
    const result = await new PgEventStore(suite.db.connect(ROLES.intentWriter, 1)).append(s, [
      factoryFor('acme').intent(s, 'created', {}),
    ])
    const e = result.events[0]!
    const relay = suite.db.connect(ROLES.relay, 1)
    const ref = { eventId: e.eventId, tenant: 'acme', txId: e.txId, position: e.position }
    assert.equal(await logHoldsEvent(relay, ref), true)
    assert.equal(await logHoldsEvent(relay, { ...ref, tenant: 'globex' }), false, 'another tenant')
    assert.equal(await logHoldsEvent(relay, { ...ref, position: e.position + 1n }), false, 'another position')
    assert.equal(await logHoldsEvent(relay, { ...ref, txId: e.txId + 1n }), false, 'another transaction')
  })
})
