import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { ReservedSql } from 'postgres'
import { PgEventStore, ROLES, RelayLease, type RoleName } from '@eventplane/store-pg'
import { closePool, createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

const ATTACKERS: RoleName[] = [ROLES.reader, ROLES.intentWriter, ROLES.factWriter]

/** The relay lock key of earlier versions (FNV-1a of `eventplane.relay/<name>`): computable by anyone. */
function fnvRelayKey(name: string): string {
  let hash = 0xcbf29ce484222325n
  for (const byte of new TextEncoder().encode(`eventplane.relay/${name}`)) {
    hash ^= BigInt(byte)
    hash = BigInt.asUintN(64, hash * 0x100000001b3n)
  }
  return BigInt.asIntN(64, hash).toString()
}

/**
 * Everything a role could try to hold the relay lease or a stream's appends
 * with: every advisory key it can compute (session locks, held until the
 * session ends; earlier versions locked with these), row and table locks on
 * the lease rows and the log, and the next version of globex's stream
 * (appends wait on that index entry).
 */
const ADVISORY = [
  `select pg_advisory_lock(${fnvRelayKey('main')}::bigint)`,
  `select pg_advisory_lock(hashtextextended('eventplane.relay/main', 0))`,
  `select pg_advisory_lock(hashtextextended('globex/deployment/g1', 0))`,
]
const ROW_LOCKS = [
  'select 1 from eventplane.relay_leases for update',
  'select 1 from eventplane.relay_leases for key share',
  'lock table eventplane.relay_leases in exclusive mode',
  `select eventplane.acquire_relay_lease('main')`,
  'select 1 from eventplane.events for update',
  'select 1 from eventplane.events for key share',
  'lock table eventplane.events in share mode',
  `insert into eventplane.events (event_id, tenant_id, kind, category, stream_id, stream_version, type, schema_version,
     data, correlation_id, caused_by, occurred_at)
   values (gen_random_uuid(), 'globex', 'intent', 'deployment', 'g1', 2, 't', 1, '{}', gen_random_uuid(), 'user:x', now())`,
]

/** Rejects when `p` takes longer than `ms`: a blocked lock shows up as a failure, not a hang. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} was blocked for ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([p, late])
  } finally {
    clearTimeout(timer)
  }
}

describe('locks only the right roles can take', () => {
  let db: TestDatabase
  let writer: PgEventStore
  const g1 = stream('globex', 'g1')

  before(async () => {
    db = await createTestDatabase('ep_locks')
    writer = new PgEventStore(db.connect(ROLES.intentWriter, 2))
    // The rows exist, so a role allowed to lock them could.
    await writer.append(g1, [factoryFor('globex').intent(g1, 'created', {})])
    const first = new RelayLease(db.connect(ROLES.relay, 1), 'main')
    assert.equal(await first.tryAcquire(), true)
    await first.close()
  })
  after(() => db.drop())

  for (const role of ATTACKERS) {
    test(`${role} can neither take nor block the relay lease or another tenant's stream`, async () => {
      const pool = db.connect(role, ROW_LOCKS.length + 1)
      const held: ReservedSql[] = []
      const refused: string[] = []
      const lease = new RelayLease(db.connect(ROLES.relay, 1), 'main')
      try {
        const session = await pool.reserve()
        held.push(session)
        await session`select set_config('eventplane.tenant', 'globex', false)`
        for (const statement of ADVISORY) await session.unsafe(statement)
        for (const statement of ROW_LOCKS) {
          const tx = await pool.reserve()
          held.push(tx)
          await tx`begin`
          await tx`select set_config('eventplane.tenant', 'globex', true)`
          // Attempts must not queue behind each other (should one of them get a lock).
          await tx`set local lock_timeout = '1s'`
          try {
            await tx.unsafe(statement)
          } catch (e) {
            refused.push(`${(e as { code?: string }).code} ${statement}`)
            await tx`rollback`
          }
        }
        // Whatever the role holds now, the relay lease and globex's appends go ahead.
        assert.equal(await within(lease.tryAcquire(), 3000, 'the relay lease'), true)
        const appended = await within(
          writer.append(g1, [factoryFor('globex').intent(g1, 'scaled', { by: role })]),
          3000,
          "globex's append",
        )
        assert.equal(appended.events.length, 1)
        assert.deepEqual(
          refused,
          ROW_LOCKS.map((s) => `42501 ${s}`),
          'every row and table lock is refused',
        )
      } finally {
        for (const session of held) session.release()
        await closePool(pool)
        await lease.close()
      }
    })
  }
})
