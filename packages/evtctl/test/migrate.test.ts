import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { UNREACHABLE_PG, failureLine, killAll, runCli } from './helpers.ts'

describe('evtctl migrate', () => {
  let db: TestDatabase
  const env = () => ({ EVENTPLANE_DATABASE_URL: db.url })
  const migrations = async () => (await db.admin`select to_regclass('eventplane.schema_migrations') as t`)[0]!.t

  before(async () => {
    db = await createTestDatabase('ep_cli_migrate', { migrate: false })
  })
  after(async () => {
    killAll()
    await db.drop()
  })

  test('applies every migration to a fresh database, then reports it up to date', async () => {
    const first = await runCli(['migrate'], { env: env() })
    assert.equal(first.code, 0, first.stderr)
    assert.match(first.stdout, /^applied 0001_events\.sql$/m)
    assert.equal(first.stderr, '')
    const second = await runCli(['migrate', '--json'], { env: env() })
    assert.equal(second.code, 0, second.stderr)
    const report = JSON.parse(second.stdout) as { applied: string[]; already_applied: string[]; database: string }
    assert.deepEqual(report.applied, [])
    assert.ok(report.already_applied.includes('0001_events.sql'))
    assert.equal(report.database, db.url)
  })

  test('an unreachable server is exit 3 with one line and no stack', async () => {
    const r = await runCli(['migrate'], { env: { EVENTPLANE_DATABASE_URL: UNREACHABLE_PG } })
    assert.equal(r.code, 3)
    assert.equal(failureLine(r).code, 'store.unavailable')
  })

  test('a role PostgreSQL does not know (wrong credentials) is exit 4 and changes nothing', async () => {
    const fresh = await createTestDatabase('ep_cli_migrate_auth', { migrate: false })
    try {
      const url = new URL(fresh.url)
      url.username = 'evtctl_no_such_role'
      const r = await runCli(['migrate'], { env: { EVENTPLANE_DATABASE_URL: url.toString() } })
      assert.equal(r.code, 4)
      assert.equal(failureLine(r).code, 'store.auth_failed')
      const [row] = await fresh.admin`select to_regclass('eventplane.schema_migrations') as t`
      assert.equal(row!.t, null)
    } finally {
      await fresh.drop()
    }
  })

  test('a log ahead of the transaction counter of its cluster (a pg_dump restored elsewhere) is refused: exit 1', async () => {
    const restored = await createTestDatabase('ep_cli_migrate_restored')
    try {
      // What pg_restore into another cluster leaves: rows whose tx_id the cluster has not reached yet. The next
      // power of ten, one digit longer than the counter: compared as text ('100…' < '9…') it would pass.
      await restored.admin`
        insert into eventplane.events (tx_id, event_id, tenant_id, kind, category, stream_id, stream_version, type,
          schema_version, data, correlation_id, caused_by, occurred_at)
        values ((10::numeric ^ length(pg_snapshot_xmax(pg_current_snapshot())::text))::bigint::text::xid8,
          '01900000-0000-7000-8000-000000000001', 'acme', 'intent', 'deployment', 'web', 1, 'create', 1, '{}',
          '01900000-0000-7000-8000-000000000001', 'user:alice', now())`
      const before = await restored.admin`select count(*)::int as n from eventplane.schema_migrations`
      const r = await runCli(['migrate'], { env: { EVENTPLANE_DATABASE_URL: restored.url } })
      assert.equal(r.code, 1, r.stderr)
      const failure = failureLine(r)
      assert.equal(failure.code, 'store.migration_failed')
      assert.match(failure.message, /newest transaction id \d+ is not below this cluster's next one \(\d+\)/)
      assert.match(failure.message, /restore a physical backup/)
      const now = await restored.admin`select count(*)::int as n from eventplane.schema_migrations`
      assert.deepEqual(now, before)
    } finally {
      await restored.drop()
    }
  })

  test('a log written while an older transaction stays open is not refused (the check is against the next xid, not the oldest open one)', async () => {
    const log = await createTestDatabase('ep_cli_migrate_open_tx')
    const held = await log.admin.reserve()
    try {
      // A transaction with an xid, held open: the cluster's oldest running one (xmin) is at most its xid.
      await held`begin`
      const [began] = await held<{ xid: string }[]>`select pg_current_xact_id()::text as xid`
      await log.admin`
        insert into eventplane.events (event_id, tenant_id, kind, category, stream_id, stream_version, type,
          schema_version, data, correlation_id, caused_by, occurred_at)
        values ('01900000-0000-7000-8000-000000000002', 'acme', 'intent', 'deployment', 'web', 1, 'create', 1, '{}',
          '01900000-0000-7000-8000-000000000002', 'user:alice', now())`
      const [written] = await log.admin<{ newest: string }[]>`select max(tx_id)::text as newest from eventplane.events`
      assert.ok(BigInt(written!.newest) > BigInt(began!.xid), 'the event committed after the held transaction began')
      const r = await runCli(['migrate'], { env: { EVENTPLANE_DATABASE_URL: log.url } })
      assert.equal(r.code, 0, r.stderr)
    } finally {
      await held`rollback`.catch(() => {})
      held.release()
      await log.drop()
    }
  })

  test('a password never appears in the output', async () => {
    const url = new URL(UNREACHABLE_PG)
    url.password = 's3cret-pw'
    const r = await runCli(['migrate', '--log-level', 'debug'], { env: { EVENTPLANE_DATABASE_URL: url.toString() } })
    assert.equal(r.code, 3)
    assert.doesNotMatch(r.stdout + r.stderr, /s3cret-pw/)
    assert.ok(await migrations())
  })
})
