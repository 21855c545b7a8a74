/**
 * `evtctl status` with an auth dir (EVENTPLANE_NATS_AUTH_DIR) reports whether the NATS server applies the log
 * account JWT the auth dir holds (`accounts/EVENTPLANE.jwt`), read back as the system user; `--check` calls
 * another one a problem. Against a real nats-server and PostgreSQL.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { LOG_ACCOUNT, loadAuthDir, writeAccountJwt } from '@eventplane/bus-nats/nats-config'
import { type TestNatsServer, startNatsServer } from '@eventplane/bus-nats/testing'
import { type TestDatabase, createTestDatabase } from '@eventplane/store-pg/testing'
import type { StatusReport } from '../src/commands/status.ts'
import { killAll, runCli } from './helpers.ts'

describe('evtctl status: the log account JWT the server applies', () => {
  let db: TestDatabase
  let server: TestNatsServer
  let env: Record<string, string>
  let file: string
  const status = async (...args: string[]) => {
    const r = await runCli(['status', '--json', ...args], { env })
    return { code: r.code, stderr: r.stderr, report: JSON.parse(r.stdout) as StatusReport }
  }

  before(async () => {
    db = await createTestDatabase('ep_cli_status_log_account')
    server = await startNatsServer()
    file = join(server.authDir!, 'accounts', `${LOG_ACCOUNT}.jwt`)
    env = {
      EVENTPLANE_DATABASE_URL: db.url,
      EVENTPLANE_NATS_URL: server.url,
      EVENTPLANE_NATS_AUTH_DIR: server.authDir!,
    }
  })
  after(async () => {
    killAll()
    await server?.stop()
    await db?.drop()
  })

  test('applied as made; a JWT the auth dir wrote and did not push is reported and is a --check problem; pushed, applied again', async () => {
    const made = await status()
    assert.equal(made.code, 0, made.stderr)
    assert.deepEqual(made.report.log_account, { applied: true, detail: `the server applies ${file}` })

    // The auth dir's log account JWT written again (a later iat), not pushed: the server applies the older one.
    await writeAccountJwt(loadAuthDir(server.authDir!), LOG_ACCOUNT)
    const stale = await status()
    assert.equal(stale.report.log_account?.applied, false)
    const expected = `the server applies another log account JWT than ${file}: push it (evtctl creds revoke-old) or restart nats-server with the config nats-setup writes`
    assert.equal(stale.report.log_account?.detail, expected)
    const checked = await status('--check')
    assert.equal(checked.code, 3)
    assert.ok(checked.report.check?.problems.includes(`the log account: ${expected}`), checked.stderr)

    const pushed = await runCli(['creds', 'revoke-old'], { env })
    assert.equal(pushed.code, 0, pushed.stderr)
    assert.equal((await status()).report.log_account?.applied, true)

    const { EVENTPLANE_NATS_AUTH_DIR: _, ...withoutAuthDir } = env
    const r = await runCli(['status', '--json'], { env: withoutAuthDir })
    assert.equal('log_account' in (JSON.parse(r.stdout) as object), false, 'without an auth dir: not asked')
  })

  test("the human line says applied; a server it cannot ask (another auth dir's system user): unknown, and a --check problem", async () => {
    const human = await runCli(['status'], { env })
    assert.match(human.stdout, new RegExp(`^log account applied: the server applies ${file}$`, 'm'), human.stderr)

    // This server's creds for the connection, another deployment's auth dir: its system user is refused.
    const other = await startNatsServer()
    try {
      const mixed = {
        ...env,
        EVENTPLANE_NATS_AUTH_DIR: other.authDir!,
        EVENTPLANE_NATS_CREDS: server.credentials.operator!.creds,
      }
      const r = await runCli(['status', '--json', '--check'], { env: mixed })
      const report = JSON.parse(r.stdout) as StatusReport
      assert.equal(report.log_account?.applied, null, r.stderr)
      assert.match(report.log_account!.detail, /^cannot ask the server for the log account JWT: /)
      assert.equal(r.code, 3)
      assert.ok(report.check?.problems.includes(`the log account: ${report.log_account!.detail}`), r.stdout)
      const line = await runCli(['status'], { env: mixed })
      assert.match(line.stdout, /^log account unknown: cannot ask the server for the log account JWT: /m)
    } finally {
      await other.stop()
    }
  })
})
