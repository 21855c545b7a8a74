import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { authDirLockPath, initAuthDir } from '@eventplane/bus-nats/nats-config'
import { type TestNatsServer, startNatsServer } from '@eventplane/bus-nats/testing'
import { UNREACHABLE_NATS, failureLine, killAll, runCli } from './helpers.ts'

// Found by the operator walk (docs/testing.md, "Operator walk 2026-12-02"): with EVENTPLANE_NATS_URL unset, `creds
// rotate` pushed to the default nats://127.0.0.1:4222, another (plain) server, and said only "no account resolver
// answers", where `tenant` commands name the URL they pushed to.
describe('creds and keys commands whose push fails name the NATS URL they pushed to, as tenant commands do', () => {
  let dir: string
  let plain: TestNatsServer

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'evtctl-push-url-'))
    // A server that takes the auth dir's creds but runs no account resolver: the push is what fails, as against
    // a NATS server other than the one nats-setup configured.
    plain = await startNatsServer({ withAuth: false })
  })
  after(async () => {
    killAll()
    await plain.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  const cli = (auth: string, natsUrl: string, ...args: string[]) =>
    runCli([...args, '--auth-dir', auth], { env: { EVENTPLANE_NATS_URL: natsUrl }, timeoutMs: 60_000 })

  test('creds rotate, creds revoke-old and keys rotate log: exit 3, bus.unavailable, the URL first', async () => {
    const auth = join(dir, 'auth')
    await initAuthDir(auth)
    const shown = `NATS at nats://127.0.0.1:${plain.port}: `
    for (const args of [
      ['creds', 'rotate', 'controller'],
      ['creds', 'revoke-old'],
      ['keys', 'rotate', 'log'],
    ]) {
      const r = await cli(auth, plain.url, ...args)
      assert.equal(r.code, 3, `${args.join(' ')}: ${r.stderr}`)
      const failure = failureLine(r)
      assert.equal(failure.code, 'bus.unavailable', args.join(' '))
      assert.ok(failure.message.startsWith(shown), `${args.join(' ')}: ${failure.message}`)
      assert.match(failure.message, /could not push the account JWT: no account resolver answers/, args.join(' '))
    }
  })

  test('a connection that cannot be opened inside the rotation names the URL once, not twice', async () => {
    const auth = join(dir, 'auth-unreachable')
    await initAuthDir(auth)
    // system connects only after writing its new creds, so its connection fails inside the rotation.
    const r = await cli(auth, UNREACHABLE_NATS, 'creds', 'rotate', 'system')
    assert.equal(r.code, 3, r.stderr)
    const failure = failureLine(r)
    assert.equal(failure.code, 'bus.unavailable')
    assert.equal(failure.message.split('NATS at nats://127.0.0.1:1').length, 2, failure.message)
  })

  test('the auth dir lock held past its 30 s is said as it is, not as a failure at the NATS URL', async () => {
    const auth = join(dir, 'auth-locked')
    await initAuthDir(auth)
    const lock = authDirLockPath(auth)
    mkdirSync(lock)
    writeFileSync(join(lock, 'pid'), `${process.pid}\n`)
    try {
      const runs = await Promise.all([
        cli(auth, plain.url, 'tenant', 'add', 'acme'),
        cli(auth, plain.url, 'creds', 'rotate', 'relay'),
      ])
      for (const r of runs) {
        assert.equal(r.code, 3, r.stderr)
        // The last line: the first one says it waits for the lock.
        const last = r.stderr.trimEnd().split('\n').at(-1)!
        const locked = `evtctl: bus.unavailable: the auth dir ${auth} is locked by process ${process.pid} `
        assert.ok(last.startsWith(locked), last)
      }
    } finally {
      rmSync(lock, { recursive: true, force: true })
    }
  })
})
