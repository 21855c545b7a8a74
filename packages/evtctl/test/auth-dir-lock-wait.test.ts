import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { authDirLockPath, serviceCredsFile, tenantCredsFile } from '@eventplane/bus-nats/nats-config'
import { type TestNatsServer, startNatsServer } from '@eventplane/bus-nats/testing'
import { type CliResult, killAll, startCli } from './helpers.ts'

/**
 * A change to the auth dir waits while another process holds its lock (up to 30 s). Once it has waited a second,
 * evtctl says so on stderr, one line naming the lock and its holder, instead of hanging silently; it then goes on
 * once the lock is free. The same for `creds` and `tenant` commands.
 */
describe('evtctl changing the auth dir while another process holds its lock', () => {
  let server: TestNatsServer

  before(async () => {
    server = await startNatsServer({ tenants: ['globex'] })
  })
  after(async () => {
    killAll()
    rmSync(authDirLockPath(server?.authDir ?? '/nonexistent'), { recursive: true, force: true })
    await server?.stop()
  })

  /**
   * Runs evtctl with `args` while this (live) process holds the auth dir lock, as a concurrent change would; once
   * the notice is on stderr, checks with `untouched` that nothing was written, releases the lock and returns the
   * run, which must have said it waited exactly once.
   */
  async function whileLocked(args: readonly string[], untouched: () => void): Promise<CliResult> {
    const dir = server.authDir!
    const lock = authDirLockPath(dir)
    mkdirSync(lock)
    writeFileSync(join(lock, 'pid'), `${process.pid}\n`)
    const notice = `evtctl: waiting for the auth dir lock (${lock}) held by pid ${process.pid} `
    const run = startCli([...args, '--auth-dir', dir], { env: { EVENTPLANE_NATS_URL: server.url } })
    try {
      await run.waitFor((s) => s.includes(notice), 20_000, 'stderr')
      untouched()
    } finally {
      rmSync(lock, { recursive: true, force: true })
    }
    const r = await run.done()
    assert.equal(r.code, 0, r.stderr)
    const waits = r.stderr.split('\n').filter((l) => l.includes('waiting for the auth dir lock'))
    assert.equal(waits.length, 1, r.stderr)
    assert.ok(waits[0]!.startsWith(notice), waits[0])
    return r
  }

  test('creds rotate says once on stderr that it waits and for whom, then rotates once released (exit 0)', async () => {
    const credsFile = serviceCredsFile(server.authDir!, 'relay')
    const old = readFileSync(credsFile, 'utf8')
    const r = await whileLocked(['creds', 'rotate', 'relay'], () =>
      assert.equal(readFileSync(credsFile, 'utf8'), old, 'nothing written while it waits'),
    )
    assert.match(r.stdout, /^user {7}relay \(rotated\)$/m)
    assert.notEqual(readFileSync(credsFile, 'utf8'), old, 'new creds written')
  })

  test('tenant add and tenant rotate say the same once, then add and rotate once released (exit 0)', async () => {
    const added = tenantCredsFile(server.authDir!, 'acme')
    const add = await whileLocked(['tenant', 'add', 'acme'], () =>
      assert.ok(!existsSync(added), 'no tenant written while it waits'),
    )
    assert.match(add.stdout, /^tenant {5}acme \(added\)$/m)

    const rotated = tenantCredsFile(server.authDir!, 'globex')
    const old = readFileSync(rotated, 'utf8')
    const rotate = await whileLocked(['tenant', 'rotate', 'globex'], () =>
      assert.equal(readFileSync(rotated, 'utf8'), old, 'nothing written while it waits'),
    )
    assert.match(rotate.stdout, /^tenant {5}globex \(user rotated\)$/m)
    assert.notEqual(readFileSync(rotated, 'utf8'), old, 'new creds written')
  })
})
