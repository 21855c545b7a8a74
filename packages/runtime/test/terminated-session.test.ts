import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { terminateLockWaiter, within } from '@eventplane/store-pg/testing'
import type { TransactionSql } from '@eventplane/store-pg'
import { ProjectionRunner } from '../src/projection/runner.ts'
import { defineSqlProjection } from '../src/projection/types.ts'
import { PROJECTOR_ROLE } from '../src/roles.ts'
import { stream } from './helpers.ts'
import { useTerminatedProjector } from './support/terminated-projector.ts'

/** The advisory lock the test holds and the projection waits on (shared, so it waits only while the test holds it). */
const LOCK = 72_514

const waitForLock = (tx: TransactionSql) => tx`select pg_advisory_xact_lock_shared(${LOCK})`.then(() => {})

describe('a projector session terminated by PostgreSQL inside a transaction of the projection engine', () => {
  const bench = useTerminatedProjector('ep_terminated_session', stream('acme', 'web', 'terminated'), 3)
  const { otherUncaught } = bench

  /**
   * Runs a SQL projection of the three events while the test holds the lock
   * that `wait` (in its setup, its apply, or the drop of the live tables in
   * a rebuild's swap) takes, terminates the projector
   * session waiting on it, then releases the lock: the runner must catch up
   * anyway, each event applied exactly once.
   */
  async function terminateWhileWaiting(name: string, wait: 'setup' | 'apply' | 'swap'): Promise<void> {
    otherUncaught.length = 0
    const projection = defineSqlProjection({
      name,
      version: 1,
      async setup(tx) {
        if (wait === 'setup') await waitForLock(tx)
        await tx`create table if not exists ${tx(name)} (event_id text primary key, applied int not null)`
      },
      async apply(tx, e) {
        if (wait === 'apply') await waitForLock(tx)
        // A second apply of one event shows as applied = 2.
        await tx`insert into ${tx(name)} as t (event_id, applied) values (${e.event_id}, 1)
                 on conflict (event_id) do update set applied = t.applied + 1`
      },
      async drop(tx) {
        if (wait === 'swap') await waitForLock(tx)
        await tx`drop table if exists ${tx(name)}`
      },
      digestQuery: `select event_id, applied from ${name} order by event_id`,
    })
    const holder = await bench.db.admin.reserve()
    await holder`select pg_advisory_lock(${LOCK})`
    const runner = new ProjectionRunner({
      projection,
      sql: bench.projector,
      pollIntervalMs: 50,
      retryDelayMs: 10,
      rebuild: wait === 'swap',
    })
    try {
      const started = runner.start()
      started.catch(() => {})
      await terminateLockWaiter(bench.db, PROJECTOR_ROLE, `the projection's ${wait} to wait on the held lock`)
      await holder`select pg_advisory_unlock(${LOCK})`
      await within(started, 60_000, 'the runner to catch up after the termination')
    } finally {
      holder.release()
      await runner.stop()
    }
    // Rejects if the runner had stopped on a fatal error.
    await runner.closed
    assert.deepEqual(otherUncaught, [])
    const rows = await bench.db.admin<
      { applied: number }[]
    >`select applied from ${bench.db.admin(`eventplane_views.${name}`)}`
    assert.deepEqual(
      rows.map((x) => x.applied),
      [1, 1, 1],
      'each event applied exactly once',
    )
  }

  test('in the commit transaction (the apply waits on a lock): the runner resyncs and applies every event exactly once', async () => {
    await terminateWhileWaiting('test_terminated_apply', 'apply')
  })

  test("in the setup transaction (the projection's setup waits on a lock): the runner retries and catches up", async () => {
    await terminateWhileWaiting('test_terminated_setup', 'setup')
  })

  test("in a rebuild's swap transaction (dropping the live tables waits on a lock): the runner retries and swaps the rebuild in", async () => {
    await terminateWhileWaiting('test_terminated_swap', 'swap')
  })
})
