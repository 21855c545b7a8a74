import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import type { Sql } from 'postgres'
import type { Checkpoint } from '@eventplane/core'
import { type AppendedEvent, PgEventStore, ROLES } from '@eventplane/store-pg'
import { eventually, holdXid, useForeignXid, useTestDatabase } from '@eventplane/store-pg/testing'
import type { HorizonRule } from '../src/sql/read-all.ts'
import { factoryFor, stream } from './helpers.ts'

// The horizon's floor (0020): a reader whose checkpoint is a row of a transaction T that has ended reads the
// rest of T, even while an older transaction stops the read, and nothing after T. Before 0020 such a page
// came back empty in the middle of T (a catch-up read took it for the end). The held transactions belong to
// the superuser; the readers are the relay and reader roles.

const next = (xid: bigint | string) => (BigInt(xid) + 1n).toString()
const at = (e: AppendedEvent): Checkpoint => ({ txId: e.txId, position: e.position })

/** Every page after `from`, pages of one row: the ids, in order. */
async function pages(read: (from: Checkpoint) => AsyncGenerator<{ event_id: string }[]>, from: Checkpoint) {
  const out: string[] = []
  for await (const batch of read(from)) out.push(...batch.map((e) => e.event_id))
  return out
}

describe('a reader in the middle of an ended transaction reads the rest of it, and nothing after it', () => {
  const db = useTestDatabase('ep_horizon_floor')
  const other = useForeignXid('ep_horizon_floor_other')
  let writer: PgEventStore
  let relay: PgEventStore
  let reader: PgEventStore
  let relaySql: Sql
  before(async () => {
    writer = new PgEventStore(db.connect(ROLES.intentWriter))
    relaySql = db.connect(ROLES.relay, 2)
    relay = new PgEventStore(relaySql)
    reader = new PgEventStore(db.connect(ROLES.reader, 2))
  })

  /** Appends three events in one transaction (T), then one more (U, a later transaction). */
  async function batchThenOne(tenant: string) {
    const f = factoryFor(tenant)
    const batch = [1, 2, 3].map((n) => f.intent(stream(tenant, 'batch'), 'created', { n }))
    const t = (await writer.append(stream(tenant, 'batch'), batch)).events
    assert.ok(
      t.every((e) => e.txId === t[0]!.txId),
      'one transaction',
    )
    const later = f.intent(stream(tenant, 'later'), 'created', { n: 4 })
    const [u] = (await writer.append(stream(tenant, 'later'), [later])).events
    return { ids: batch.map((e) => e.event_id), t, u: u!, laterId: later.event_id }
  }

  test('log_horizon and snapshot_horizon on crafted snapshots: raised to T+1 only when T is final', async () => {
    // O (another database) and X (this one) are older than T; the look-up passes O and stops at X.
    const x = await holdXid(db.admin)
    try {
      const { t, u } = await batchThenOne('acme')
      const [tx, o, xx] = [t[0]!.txId.toString(), other.xid, x.xid]
      assert.ok(BigInt(o) < BigInt(xx) && BigInt(xx) < t[0]!.txId, 'O < X < T')
      const xmax = next(u.txId)
      const horizon = async (snapshot: string, after: Checkpoint) => {
        const [r] = await relaySql<{ exact: string; cheap: string }[]>`
          select eventplane.log_horizon(${snapshot}::pg_snapshot, ${after.txId.toString()}::xid8,
                   ${after.position.toString()}::bigint)::text as exact,
                 eventplane.snapshot_horizon(${snapshot}::pg_snapshot, ${after.txId.toString()}::xid8)::text as cheap`
        return r!
      }
      const mid = at(t[0]!)
      // The look-up path (U's row waits above the floor): X stops the read, T is final: T+1.
      assert.deepEqual(await horizon(`${o}:${xmax}:${o},${xx}`, mid), { exact: next(tx), cheap: next(tx) })
      // The probe's early return (nothing visible above U's floor) and the empty-xip one: the floor.
      assert.deepEqual(await horizon(`${o}:${xmax}:${o},${xx}`, at(u)), { exact: xmax, cheap: xmax })
      assert.deepEqual(await horizon(`${xx}:${xmax}:`, mid), { exact: next(tx), cheap: next(tx) })
      // T still running (in xip) or not yet started (at xmax): not raised, X stops the read.
      assert.deepEqual(await horizon(`${o}:${xmax}:${o},${xx},${tx}`, mid), { exact: xx, cheap: o })
      assert.deepEqual(await horizon(`${o}:${tx}:${o},${xx}`, mid), { exact: xx, cheap: o })
      // The start checkpoint (T = 0): 0018's horizon.
      assert.deepEqual(await horizon(`${o}:${xmax}:${o},${xx}`, { txId: 0n, position: 0n }), { exact: xx, cheap: o })
      // An aborted T has no row: its floor passes nothing, and it is final.
      const aborted = await holdXid(db.admin)
      await aborted.release()
      const abortedAt = { txId: BigInt(aborted.xid), position: 0n }
      const after = next(aborted.xid)
      assert.deepEqual(await horizon(`${o}:${after}:${o},${xx}`, abortedAt), { exact: after, cheap: after })
    } finally {
      await x.release()
    }
  })

  test('readAll, a tenant read, readCategory and the relay (xmin and exact) return the rest of T, not U', async () => {
    // X: this database, an xid taken before T's append, still open: every rule stops at or below it.
    const x = await holdXid(db.admin)
    try {
      const { ids, t, u, laterId } = await batchThenOne('initech')
      assert.ok(BigInt(x.xid) < t[0]!.txId && t[0]!.txId < u.txId)
      const rest = ids.slice(1)
      const text = (rule: HorizonRule) => (from: Checkpoint) =>
        relay.readAllText({ from, batchSize: 1, horizon: () => rule })
      const reads = {
        readAll: (from: Checkpoint) => relay.readAll({ from, batchSize: 1 }),
        'tenant readAll': (from: Checkpoint) => reader.readAll({ from, batchSize: 1, tenant: 'initech' }),
        readCategory: (from: Checkpoint) => reader.readCategory('initech', 'deployment', { from, batchSize: 1 }),
        'relay xmin': text('xmin'),
        'relay exact': text('exact'),
      }
      for (const [name, read] of Object.entries(reads)) {
        assert.deepEqual(await pages(read, at(t[0]!)), rest, `${name} from T's first row`)
        assert.deepEqual(await pages(read, at(t[2]!)), [], `${name} from T's last row: not U (${laterId})`)
      }
    } finally {
      await x.release()
    }
  })

  test('nothing is skipped: a transaction of this database open after T is read, in order, once it commits', async () => {
    const f = factoryFor('hooli')
    const x = await holdXid(db.admin)
    const slowConn = await db.connect(ROLES.intentWriter, 1).reserve()
    try {
      const batch = [1, 2, 3].map((n) => f.intent(stream('hooli', 'batch'), 'created', { n }))
      const t = (await writer.append(stream('hooli', 'batch'), batch)).events
      // V: this database, its xid after T's, one row, open while U commits after it.
      await slowConn.unsafe('begin')
      const slow = f.intent(stream('hooli', 'slow'), 'created', { n: 5 })
      const [v] = (await new PgEventStore(slowConn as never).append(stream('hooli', 'slow'), [slow])).events
      const later = f.intent(stream('hooli', 'later'), 'created', { n: 4 })
      const [u] = (await writer.append(stream('hooli', 'later'), [later])).events
      assert.ok(BigInt(x.xid) < t[0]!.txId && t[0]!.txId < v!.txId && v!.txId < u!.txId, 'X < T < V < U')
      const reads = {
        readAll: (from: Checkpoint) => relay.readAll({ from, batchSize: 1 }),
        'tenant readAll': (from: Checkpoint) => reader.readAll({ from, batchSize: 1, tenant: 'hooli' }),
        'relay xmin': (from: Checkpoint) => relay.readAllText({ from, batchSize: 1, horizon: () => 'xmin' }),
        'relay exact': (from: Checkpoint) => relay.readAllText({ from, batchSize: 1, horizon: () => 'exact' }),
      }
      const rest = batch.slice(1).map((e) => e.event_id)
      for (const [name, read] of Object.entries(reads)) {
        assert.deepEqual(await pages(read, at(t[0]!)), rest, `${name}: the rest of T, not U while V is open`)
      }
      await slowConn.unsafe('commit')
      await x.release()
      // From T's last row: V's row, then U's. Polled only for this database's autovacuum, which may hold an
      // xid for a moment. The cheap rule still waits for the other database's transaction (older than V).
      const { 'relay xmin': cheap, ...exact } = reads
      assert.deepEqual(await pages(cheap, at(t[2]!)), [], 'relay xmin: held back by the other database')
      for (const [name, read] of Object.entries(exact)) {
        let seen: string[] = []
        await eventually(async () => (seen = await pages(read, at(t[2]!))).length >= 2, 30_000, name)
        assert.deepEqual(seen, [slow.event_id, later.event_id], `${name}: V, then U`)
      }
    } finally {
      await slowConn.unsafe('rollback').catch(() => {})
      slowConn.release()
      await x.release()
    }
  })

  test('a relay drain that turns from exact to xmin inside T reads T to its end (another database held)', async () => {
    const f = factoryFor('globex')
    const first = f.intent(stream('globex', 'first'), 'created', { n: 0 })
    const [b] = (await writer.append(stream('globex', 'first'), [first])).events
    const { ids, u } = await batchThenOne('globex')
    // Pages of one from the event before T: the first page with the exact horizon (it passes the other
    // database's xid, older than T), every later one with xmin (at or below that xid).
    const drain = async () => {
      const out: string[] = []
      let page = 0
      const horizon = (): HorizonRule => (page++ === 0 ? 'exact' : 'xmin')
      for await (const rows of relay.readAllText({ from: at(b!), batchSize: 1, horizon })) {
        out.push(...rows.map((r) => r.event_id))
      }
      return out
    }
    // Polled only until the exact page passes (this database's autovacuum may hold an xid for a moment).
    let out: string[] = []
    await eventually(async () => (out = await drain()).length > 0, 30_000, 'the exact page')
    assert.ok(BigInt(other.xid) < u.txId, 'the other database is still held')
    assert.deepEqual(out, ids, 'all of T, then nothing: U waits behind the other database for an exact read')
  })
})
