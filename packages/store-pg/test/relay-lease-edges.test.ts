import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { PgEventStore, ROLES, RelayLease, loadRelayRecord, logHoldsEvent } from '@eventplane/store-pg'
import { createTestDatabase, eventually, type TestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

describe('relay lease and checkpoint store at their edges', () => {
  let db: TestDatabase
  const leases: RelayLease[] = []
  const lease = (name: string): RelayLease => {
    const l = new RelayLease(db.connect(ROLES.relay, 1), name)
    leases.push(l)
    return l
  }
  const holderPid = async (name: string): Promise<number> => {
    const [row] = await db.admin<{ pid: number }[]>`select holder_pid as pid from eventplane.relay_leases
      where name = ${name}`
    return row!.pid
  }

  before(async () => {
    db = await createTestDatabase('ep_relay_lease_edges')
  })
  after(async () => {
    await Promise.all(leases.map((l) => l.close()))
    await db.drop()
  })

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
    assert.deepEqual(await loadRelayRecord(db.connect(ROLES.relay, 1), 'record'), {
      checkpoint: { txId: 9001n, position: 42n },
      streamCreated: '2026-11-30T10:00:00.000000Z',
    })
    assert.equal(await loadRelayRecord(db.connect(ROLES.relay, 1), 'never-stored'), undefined)
  })

  test('a relay whose session was lost cannot release the lease its successor took', async () => {
    const a = lease('late-release')
    const b = lease('late-release')
    assert.equal(await a.tryAcquire(), true)
    const pid = await holderPid('late-release')
    await db.admin`select pg_terminate_backend(${pid}::int)`
    await eventually(() => b.tryAcquire(), 10_000, 'the standby to take the lease')
    await a.release()
    assert.equal(await b.held(), true, 'B still holds the lease after A released')
    assert.equal(await lease('late-release').tryAcquire(), false, 'a third relay cannot take it')
    assert.equal(await b.storeCheckpoint({ txId: 1n, position: 1n }, 'stream-1'), true)
  })

  test('a lease statement that timed out (its row locked by a held transaction) leaves the relay without the lease', async () => {
    await db.admin`insert into eventplane.relay_leases (name) values ('stalled')`
    const held = await db.admin.reserve()
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

  test('logHoldsEvent: the event at its tx id and position, of its tenant; nothing else', async () => {
    const s = stream('acme', 'held')
    const result = await new PgEventStore(db.connect(ROLES.intentWriter, 1)).append(s, [
      factoryFor('acme').intent(s, 'created', {}),
    ])
    const e = result.events[0]!
    const relay = db.connect(ROLES.relay, 1)
    const ref = { eventId: e.eventId, tenant: 'acme', txId: e.txId, position: e.position }
    assert.equal(await logHoldsEvent(relay, ref), true)
    assert.equal(await logHoldsEvent(relay, { ...ref, tenant: 'globex' }), false, 'another tenant')
    assert.equal(await logHoldsEvent(relay, { ...ref, position: e.position + 1n }), false, 'another position')
    assert.equal(await logHoldsEvent(relay, { ...ref, txId: e.txId + 1n }), false, 'another transaction')
  })
})
