// Run by tests/adoption.test.ts with plain node inside the npm-installed project: the installed store-pg's own
// pool (connectPg, so the postgres.js that store-pg resolves there) must connect again at once after PostgreSQL
// ended its session inside a transaction (porsager/postgres#1208, patches/postgres@3.4.9.patch; the same rounds as
// packages/store-pg/test/pg-terminated-reconnect.test.ts). Prints one JSON line {"rounds":[ms, …]}, each the time
// from the ended transaction to the pool's next answer; exits 1 with one line when a round takes over 5 s.
import { connectPg, guardPgWriteAfterClose, isPgWriteAfterClose, typedBegin } from '@eventplane/store-pg'

const LOCK = 72_612
const APP = 'ep-adoption-reconnect'
const LIMIT_MS = 5000
const url = process.env.EVENTPLANE_DATABASE_URL
if (!url) throw new Error('EVENTPLANE_DATABASE_URL is not set')

// The driver's ROLLBACK written to the closed socket is uncatchable; the guard store-pg ships ignores exactly it.
guardPgWriteAfterClose({ onIgnored: () => {} })
// One connection: the next transaction must use the very connection whose session was ended.
const pool = connectPg(url, { max: 1, applicationName: APP })
const admin = connectPg(url, { max: 2, applicationName: `${APP}-admin` })

/** The waiting session's pid, polled until the pool's transaction waits on the held advisory lock. */
async function waiterPid() {
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
    const [row] = await admin`select pid from pg_stat_activity
      where application_name = ${APP} and wait_event = 'advisory'`
    if (row) return row.pid
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error('the pool transaction never waited on the held lock')
}

/** `select 1` in a transaction, retried at once after store.unavailable, until an answer or the limit. */
async function answer(deadline) {
  for (;;) {
    try {
      return await Promise.race([
        typedBegin(pool, (tx) => tx`select 1 as one`),
        new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), Math.max(0, deadline - Date.now()))),
      ])
    } catch (e) {
      if (e?.code !== 'store.unavailable' || Date.now() > deadline) throw e
    }
  }
}

const rounds = []
try {
  for (let round = 1; round <= 3; round++) {
    const holder = await admin.reserve()
    try {
      await holder`select pg_advisory_lock(${LOCK})`
      const waiting = typedBegin(pool, (tx) => tx`select pg_advisory_xact_lock_shared(${LOCK})`)
      waiting.catch(() => {})
      const pid = await waiterPid()
      await admin`select pg_terminate_backend(${pid})`
      await holder`select pg_advisory_unlock(${LOCK})`
      const ended = await waiting.then(
        () => 'committed',
        (e) => e?.code ?? String(e),
      )
      if (ended !== 'store.unavailable') throw new Error(`round ${round}: the ended transaction gave ${ended}`)
    } finally {
      holder.release()
    }
    const start = Date.now()
    try {
      await answer(start + LIMIT_MS)
    } catch (e) {
      const what = isPgWriteAfterClose(e) ? 'the ROLLBACK write' : (e?.code ?? e?.message)
      throw new Error(`round ${round}: the pool did not answer within ${LIMIT_MS} ms (${what})`)
    }
    rounds.push(Date.now() - start)
  }
  console.log(JSON.stringify({ rounds }))
} catch (e) {
  console.error(e instanceof Error ? e.message : String(e))
  process.exitCode = 1
} finally {
  await Promise.all([pool.end({ timeout: 1 }), admin.end({ timeout: 1 })])
}
