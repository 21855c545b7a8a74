import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { initAuthDir } from '@eventplane/bus-nats/nats-config'
import { startNatsServer } from '@eventplane/bus-nats/testing'
import { EventFactory } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { UNREACHABLE_NATS, failureLine, killAll, runCli, startCli } from './helpers.ts'

/** The password every URL below carries; the test server trusts local logins, so it is never checked. */
const SECRET = 'hunter2-in-url'

const withPassword = (url: string): string => {
  const u = new URL(url)
  u.password = SECRET
  return u.toString()
}

describe('what evtctl prints of a URL never holds its password; what it writes of a tenant only its owner reads', () => {
  let db: TestDatabase
  let dir: string

  before(async () => {
    db = await createTestDatabase('ep_cli_secrets')
    dir = mkdtempSync(join(tmpdir(), 'evtctl-secrets-'))
    const acme = EventFactory.forTenant('acme', { causedBy: 'user:alice' })
    const stream = { tenant: 'acme', category: 'deployment', id: 'web' }
    await new PgEventStore(db.connect(ROLES.intentWriter, 1)).append(stream, [acme.intent(stream, 'created', {})])
  })
  after(async () => {
    killAll()
    rmSync(dir, { recursive: true, force: true })
    await db.drop()
  })

  test('status names the database with the password replaced, human and --json', async () => {
    const env = { EVENTPLANE_DATABASE_URL: withPassword(db.url), EVENTPLANE_NATS_URL: UNREACHABLE_NATS }
    const json = await runCli(['status', '--json', '--no-nats'], { env })
    assert.equal(json.code, 0, json.stderr)
    const report = JSON.parse(json.stdout) as { database: string }
    assert.equal(new URL(report.database).password, '***')
    const human = await runCli(['status', '--no-nats'], { env })
    assert.equal(human.code, 0, human.stderr)
    assert.match(human.stdout, /^database {4}postgres:\/\/postgres:\*\*\*@/m)
    for (const r of [json, human]) assert.doesNotMatch(r.stdout + r.stderr, new RegExp(SECRET))
  })

  test('migrate of a migrated database says so with the password replaced, human and --json', async () => {
    const env = { EVENTPLANE_DATABASE_URL: withPassword(db.url) }
    const json = await runCli(['migrate', '--json', '--log-level', 'debug'], { env })
    assert.equal(json.code, 0, json.stderr)
    const report = JSON.parse(json.stdout) as { database: string; applied: string[] }
    assert.deepEqual(report.applied, [])
    assert.equal(new URL(report.database).password, '***')
    const human = await runCli(['migrate'], { env })
    assert.equal(human.code, 0, human.stderr)
    assert.match(human.stdout, /:\*\*\*@.*: up to date/)
    for (const r of [json, human]) assert.doesNotMatch(r.stdout + r.stderr, new RegExp(SECRET))
  })

  /** `evtctl tenant add acme` with a new auth dir `auth`, its NATS URL `natsUrl` as user operator, password SECRET. */
  const tenantAddWithSecret = async (auth: string, natsUrl: string) => {
    await initAuthDir(auth)
    const url = new URL(natsUrl)
    url.username = 'operator'
    url.password = SECRET
    return runCli(['tenant', 'add', 'acme', '--auth-dir', auth], { env: { EVENTPLANE_NATS_URL: url.toString() } })
  }

  test('tenant add that cannot reach NATS names the URL with the password replaced (exit 3)', async () => {
    const r = await tenantAddWithSecret(join(dir, 'auth'), UNREACHABLE_NATS)
    assert.equal(r.code, 3, r.stderr)
    const failure = failureLine(r)
    assert.equal(failure.code, 'bus.unavailable')
    assert.match(failure.message, /^cannot connect to NATS at nats:\/\/operator:\*\*\*@127\.0\.0\.1:1/)
    assert.doesNotMatch(r.stderr, new RegExp(SECRET))
  })

  test('tenant add whose account JWT push fails names the NATS URL it pushed to, the password replaced', async () => {
    // A server that takes the auth dir's creds but runs no account resolver (not operator mode): the connections
    // and the consumers succeed, the push is what fails, as against a NATS server other than the one nats-setup made.
    const open = await startNatsServer({ withAuth: false })
    try {
      const r = await tenantAddWithSecret(join(dir, 'auth-push'), open.url)
      assert.equal(r.code, 3, r.stderr)
      const failure = failureLine(r)
      assert.equal(failure.code, 'bus.unavailable')
      const shown = `NATS at nats://operator:***@127.0.0.1:${open.port}: could not push the account JWT: `
      assert.ok(failure.message.startsWith(shown), failure.message)
      assert.doesNotMatch(r.stderr, new RegExp(SECRET))
    } finally {
      await open.stop()
    }
  })

  test("a service's start line names NATS and the database with the password replaced, and no line holds it", async () => {
    const nats = new URL(UNREACHABLE_NATS)
    nats.username = 'relay'
    nats.password = SECRET
    const database = new URL(withPassword(db.url))
    database.username = ROLES.relay
    // NATS never answers: the relay waits for it, logging its start and its retries, until it is stopped.
    const relay = startCli(['relay', '--log-level', 'info'], {
      env: { EVENTPLANE_DATABASE_URL: database.toString(), EVENTPLANE_NATS_URL: nats.toString() },
    })
    await relay.waitFor((err) => err.includes('"relay process starting"'), 30_000, 'stderr')
    relay.child.kill('SIGTERM')
    const r = await relay.done(20_000)
    const start = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg?: string; nats?: string; database?: Record<string, string> })
      .find((l) => l.msg === 'relay process starting')
    assert.equal(start?.nats, 'nats://relay:***@127.0.0.1:1')
    assert.equal(new URL(start!.database![ROLES.relay]!).password, '***')
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(SECRET))
  })

  test('export --output writes a file only its owner can read (mode 0600), with or without the actors', async () => {
    for (const extra of [[], ['--include-actor']]) {
      const file = join(dir, `acme-${extra.length}.ndjson`)
      const r = await runCli(['export', '--tenant', 'acme', '--output', file, ...extra], {
        env: { EVENTPLANE_DATABASE_URL: db.url },
      })
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stderr, /^exported 1 events to /m)
      assert.equal(statSync(file).mode & 0o777, 0o600, extra.join(' '))
    }
  })
})
