import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { isEventplaneError, isUnavailableError } from '@eventplane/core'
import { eventually, terminateLockWaiter } from '@eventplane/store-pg/testing'
import type { TransactionSql } from '@eventplane/store-pg'
import { projectionDigest } from '../src/projection/digest.ts'
import { rebuildProjection } from '../src/projection/rebuild.ts'
import { defineReducerProjection, defineSqlProjection } from '../src/projection/types.ts'
import { PROJECTOR_ROLE } from '../src/roles.ts'
import { stream } from './helpers.ts'
import { useTerminatedProjector } from './support/terminated-projector.ts'

/** The advisory lock a shadow's setup waits on while the test holds it. */
const LOCK = 72_733

/**
 * A projector session PostgreSQL terminates inside a transaction of `beginRebuild` or `projectionDigest` (it waits
 * on a lock the test holds, then `pg_terminate_backend`) is a passing failure: the call rejects with the typed,
 * retryable `store.unavailable`, never postgres.js' raw `CONNECTION_CLOSED` of its ROLLBACK.
 */
describe('a projector session terminated inside a rebuild start or a digest', () => {
  const bench = useTerminatedProjector('ep_terminated_rebuild', stream('acme', 'rebuilt'), 2)
  const { otherUncaught } = bench

  /**
   * Runs `call` while the test holds `lock` (a statement in a transaction of its own), terminates the projector
   * session that waits on it, then releases it; `call` must reject with store.unavailable.
   */
  async function terminatedWhileBlocked(lock: string, call: () => Promise<unknown>, what: string): Promise<void> {
    otherUncaught.length = 0
    const holder = await bench.db.admin.reserve()
    try {
      await holder`begin`
      await holder.unsafe(lock)
      const [row] = await holder<{ pid: number }[]>`select pg_backend_pid() as pid`
      const result = call()
      result.catch(() => {})
      let pid = 0
      await eventually(
        async () => {
          const [waiting] = await bench.db.admin<{ pid: number }[]>`select pid from pg_stat_activity
            where datname = ${bench.db.name} and usename = ${PROJECTOR_ROLE} and ${row!.pid}::int = any(pg_blocking_pids(pid))`
          pid = waiting?.pid ?? 0
          return pid !== 0
        },
        30_000,
        what,
      )
      await bench.db.admin`select pg_terminate_backend(${pid}::int)`
      await holder`rollback`
      await assertUnavailable(result)
    } finally {
      holder.release()
    }
    assert.deepEqual(otherUncaught, [])
  }

  async function assertUnavailable(result: Promise<unknown>): Promise<void> {
    await assert.rejects(result, (e) => {
      assert.ok(isEventplaneError(e, 'store.unavailable'), `store.unavailable, not ${String(e)}`)
      assert.ok(isUnavailableError(e), 'retryable')
      return true
    })
  }

  const counter = (name: string) =>
    defineReducerProjection({
      name,
      version: 1,
      initial: () => 0,
      apply: (n: number) => n + 1,
      key: (e) => e.stream.id,
    })

  /** A SQL projection whose setup waits on the advisory lock `LOCK` when it sets up a shadow (not the live tables). */
  const waitingShadow = (name: string) =>
    defineSqlProjection({
      name,
      version: 1,
      async setup(tx: TransactionSql) {
        const [schema] = await tx<{ s: string }[]>`select current_schema() as s`
        if (schema!.s !== 'eventplane_views') await tx`select pg_advisory_xact_lock_shared(${LOCK})`
        await tx`create table if not exists ${tx(name)} (event_id text primary key)`
      },
      async apply(tx, e) {
        await tx`insert into ${tx(name)} (event_id) values (${e.event_id})`
      },
      async drop(tx) {
        await tx`drop table if exists ${tx(name)}`
      },
      digestQuery: `select event_id from ${name} order by event_id`,
    })

  test("beginRebuild's start transaction (the rebuild row's lock waits on the held table): store.unavailable", async () => {
    await terminatedWhileBlocked(
      'lock table eventplane.projection_rebuilds in exclusive mode',
      () => rebuildProjection({ projection: counter('test_term_rebuild_start'), sql: bench.projector }),
      "the rebuild's start to wait on the held projection_rebuilds",
    )
  })

  test("beginRebuild's shadow setup transaction (a SQL projection's setup waits on a lock): store.unavailable", async () => {
    otherUncaught.length = 0
    const holder = await bench.db.admin.reserve()
    try {
      await holder`select pg_advisory_lock(${LOCK})`
      const result = rebuildProjection({ projection: waitingShadow('test_term_shadow_setup'), sql: bench.projector })
      result.catch(() => {})
      await terminateLockWaiter(bench.db, PROJECTOR_ROLE, "the shadow's setup to wait on the held lock")
      await holder`select pg_advisory_unlock(${LOCK})`
      await assertUnavailable(result)
    } finally {
      holder.release()
    }
    assert.deepEqual(otherUncaught, [])
  })

  test("projectionDigest's transaction of a SQL projection (its digest query waits on the held table): store.unavailable", async () => {
    const projection = waitingShadow('test_term_digest_sql')
    // Rebuilt and swapped in (nobody holds LOCK: its setup does not wait), then its live table held.
    await rebuildProjection({ projection, sql: bench.projector, digest: false })
    await terminatedWhileBlocked(
      'lock table eventplane_views.test_term_digest_sql in access exclusive mode',
      () => projectionDigest(bench.projector, projection),
      "the digest's query to wait on the held table",
    )
  })

  test("projectionDigest's cursor of a reducer projection (it waits on the held states table): store.unavailable", async () => {
    const projection = counter('test_term_digest_reducer')
    await rebuildProjection({ projection, sql: bench.projector, digest: false })
    await terminatedWhileBlocked(
      'lock table eventplane.projection_state in access exclusive mode',
      () => projectionDigest(bench.projector, projection),
      "the digest's cursor to wait on the held states table",
    )
  })
})
