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

  test('a password never appears in the output', async () => {
    const url = new URL(UNREACHABLE_PG)
    url.password = 's3cret-pw'
    const r = await runCli(['migrate', '--log-level', 'debug'], { env: { EVENTPLANE_DATABASE_URL: url.toString() } })
    assert.equal(r.code, 3)
    assert.doesNotMatch(r.stdout + r.stderr, /s3cret-pw/)
    assert.ok(await migrations())
  })
})
