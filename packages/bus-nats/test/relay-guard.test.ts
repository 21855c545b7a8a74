import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { ROLES, type Sql } from '@eventplane/store-pg'
import { useTestDatabase } from '@eventplane/store-pg/testing'
import { TransactionGuard } from '../src/relay-guard.ts'
import { Relay } from '../src/relay.ts'
import { appendIntents, eventually, pgLog, streamMessages, useBusEnv, within } from './fixtures.ts'
import { type LogEntry, captureLogger } from './support/log-entries.ts'

/** A marker in the stuck session's query text: it must never reach a log line. */
const MARKER = 'guard_secret_marker'

describe('relay transaction guard', () => {
  const env = useBusEnv('ep_relay_guard')
  /** Another database of the cluster: its transactions never write into this log. */
  const other = useTestDatabase('ep_relay_guard_other', { migrate: false })

  /**
   * A reader session that switches its idle timeout off and sits in a
   * transaction holding an xid until `end()`; `done` settles with that
   * transaction (it rejects when the session was terminated). In this
   * log's database unless `pool` says otherwise.
   */
  async function stuckReader(
    pool: Sql = env.db.connect(ROLES.reader, 1),
  ): Promise<{ pid: number; began: number; end: () => void; done: Promise<void> }> {
    let end!: () => void
    const ended = new Promise<void>((resolve) => (end = resolve))
    let holding!: (pid: number) => void
    const pid = new Promise<number>((resolve) => (holding = resolve))
    const began = Date.now()
    const done = pool.begin(async (tx) => {
      await tx`set local idle_in_transaction_session_timeout = 0`
      const [row] = await tx.unsafe<{ pid: number }[]>(
        `select pg_backend_pid() as pid, pg_current_xact_id() as ${MARKER}`,
      )
      holding(row!.pid)
      await ended
    })
    done.catch(() => {})
    return { pid: await pid, began, end, done }
  }

  /** Whether backend `pid` is still in a transaction holding an xid. */
  const holdsXid = async (pid: number): Promise<boolean> =>
    (await env.db.admin`select 1 from pg_stat_activity where pid = ${pid} and backend_xid is not null`).length === 1

  async function startRelay(name: string, guard: { stuckAfterMs: number; terminate: boolean }) {
    const logger = captureLogger()
    const relay = new Relay({
      sql: env.db.connect(ROLES.relay, 4),
      nc: await env.natsAs('relay'),
      name,
      pollIntervalMs: 200,
      guard,
      logger,
    })
    relay.start()
    await eventually(() => relay.state === 'active', `relay ${name} to become active`)
    return { relay, logger }
  }

  const logged = (logger: { entries: LogEntry[] }, msg: string, pid: number) =>
    logger.entries.find((e) => e.msg === msg && e.fields.pid === pid)

  test('a reader holding an xid is reported (pid, role, age; no query text) and left alone when the guard only reports', async () => {
    const { relay, logger } = await startRelay('reporting', { stuckAfterMs: 1000, terminate: false })
    const reader = await stuckReader()
    try {
      const appended = await appendIntents(env.intents, 'acme', 3, 3, 'reported')
      await eventually(() => logged(logger, 'a transaction holds back the log', reader.pid) !== undefined, 'a report')
      const report = logged(logger, 'a transaction holds back the log', reader.pid)!
      assert.equal(report.level, 'warn')
      assert.equal(report.fields.kind, 'session')
      assert.equal(report.fields.role, ROLES.reader)
      assert.equal(report.fields.database, env.db.name)
      assert.ok(Number(report.fields.age_ms) > 1000, `age ${report.fields.age_ms}`)
      assert.doesNotMatch(JSON.stringify(logger.entries), new RegExp(MARKER))
      assert.equal(logged(logger, 'terminated a transaction that held back the log', reader.pid), undefined)
      assert.equal(await holdsXid(reader.pid), true, 'the reader still sits in its transaction')
      const published = (await streamMessages(await env.natsAs('operator'))).map((m) => m.event.event_id)
      assert.ok(
        appended.every((e) => !published.includes(e.event_id)),
        'what committed after the xid is held back meanwhile',
      )
    } finally {
      reader.end()
      await reader.done
      await within(relay.stop(), 15_000, 'relay stop')
    }
  })

  test('with the guard on, a reader holding an xid is terminated within the bound and the relay catches up', async () => {
    const bound = 2000
    const { relay, logger } = await startRelay('guarded', { stuckAfterMs: bound, terminate: true })
    const reader = await stuckReader()
    try {
      const appended = await appendIntents(env.intents, 'globex', 4, 4, 'guarded')
      await eventually(
        () => logged(logger, 'terminated a transaction that held back the log', reader.pid) !== undefined,
        'the guard to terminate the reader',
      )
      const ended = Date.now() - reader.began
      const entry = logged(logger, 'terminated a transaction that held back the log', reader.pid)!
      assert.equal(entry.fields.role, ROLES.reader)
      assert.equal(entry.fields.terminated, true)
      // Checked every poll interval (200 ms): ended after the bound, within the bound plus some checks (a loaded
      // two-core machine delays a check by seconds at worst; "never" fails the eventually above).
      assert.ok(ended >= bound && ended < bound + 5000, `terminated after ${ended} ms (bound ${bound} ms)`)
      // pg_terminate_backend only signals the backend: it leaves a moment later.
      await eventually(async () => !(await holdsXid(reader.pid)), 'the stuck session to be gone')
      await eventually(async () => {
        const published = (await streamMessages(await env.natsAs('operator'))).map((m) => m.event.event_id)
        return appended.every((e) => published.includes(e.event_id))
      }, 'the relay to publish what was held back')
      const log = await pgLog(env.relayStore)
      const stream = (await streamMessages(await env.natsAs('operator'))).map((m) => m.event.event_id)
      assert.deepEqual(
        stream,
        log.map((e) => e.event_id),
      )
    } finally {
      // The reader's client is left alone: postgres.js 3.4.9 throws uncatchably when a connection whose
      // backend was terminated is written to again (porsager/postgres#1208); the database drop ends it.
      await within(relay.stop(), 15_000, 'relay stop')
    }
  })

  test("another database's transaction, however old, is neither reported nor terminated; this database's is", async () => {
    // The same role, not a superuser, so only the database keeps the guard's hands off it. It began first: when
    // this database's reader is past the bound, so is it, and a guard counting the whole cluster would report it.
    const elsewhere = await stuckReader(other.connect(ROLES.reader, 1))
    const { relay, logger } = await startRelay('elsewhere', { stuckAfterMs: 1000, terminate: true })
    const reader = await stuckReader()
    try {
      await eventually(
        () => logged(logger, 'terminated a transaction that held back the log', reader.pid) !== undefined,
        'the guard to terminate this database’s reader',
      )
      assert.ok(logged(logger, 'a transaction holds back the log', reader.pid), 'this database’s reader reported')
      assert.equal(logged(logger, 'a transaction holds back the log', elsewhere.pid), undefined)
      assert.equal(logged(logger, 'terminated a transaction that held back the log', elsewhere.pid), undefined)
      assert.equal(await holdsXid(elsewhere.pid), true, 'the other database’s reader still sits in its transaction')
    } finally {
      elsewhere.end()
      await elsewhere.done
      await within(relay.stop(), 15_000, 'relay stop')
    }
  })

  test('each stuck transaction is reported once however often the guard looks; a bound under 1000 ms is refused', async () => {
    const sql = env.db.connect(ROLES.relay, 1)
    assert.throws(() => new TransactionGuard(sql, captureLogger(), { stuckAfterMs: 999 }), RangeError)
    assert.throws(() => new TransactionGuard(sql, captureLogger(), { stuckAfterMs: 1000.5 }), RangeError)
    const logger = captureLogger()
    const guard = new TransactionGuard(sql, logger, { stuckAfterMs: 1000 })
    const reader = await stuckReader()
    try {
      await eventually(async () => {
        await guard.check()
        return logged(logger, 'a transaction holds back the log', reader.pid) !== undefined
      }, 'a report of the stuck reader')
      await guard.check()
      await guard.check()
      const reports = logger.entries.filter(
        (e) => e.msg === 'a transaction holds back the log' && e.fields.pid === reader.pid,
      )
      assert.equal(reports.length, 1, 'reported once over three looks')
      assert.equal(await holdsXid(reader.pid), true, 'reported, not terminated')
    } finally {
      reader.end()
      await reader.done
    }
  })
})
