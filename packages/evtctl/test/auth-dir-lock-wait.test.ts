import assert from 'node:assert/strict'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { authDirLockPath, serviceCredsFile } from '@eventplane/bus-nats/nats-config'
import { type TestNatsServer, startNatsServer } from '@eventplane/bus-nats/testing'
import { killAll, startCli } from './helpers.ts'

/**
 * A change to the auth dir waits while another process holds its lock (up to 30 s). Once it has waited a second,
 * evtctl says so on stderr, one line naming the lock and its holder, instead of hanging silently; it then goes on
 * once the lock is free.
 */
describe('evtctl creds rotate while another process holds the auth dir lock', () => {
  let server: TestNatsServer

  before(async () => {
    server = await startNatsServer()
  })
  after(async () => {
    killAll()
    rmSync(authDirLockPath(server?.authDir ?? '/nonexistent'), { recursive: true, force: true })
    await server?.stop()
  })

  test('says once on stderr that it waits and for whom, then rotates once the lock is released (exit 0)', async () => {
    const dir = server.authDir!
    const lock = authDirLockPath(dir)
    const credsFile = serviceCredsFile(dir, 'relay')
    const old = readFileSync(credsFile, 'utf8')
    // Held by this (live) process, as a concurrent rotation would.
    mkdirSync(lock)
    writeFileSync(join(lock, 'pid'), `${process.pid}\n`)
    const notice = `evtctl: waiting for the auth dir lock (${lock}) held by pid ${process.pid} `
    const rotate = startCli(['creds', 'rotate', 'relay', '--auth-dir', dir], {
      env: { EVENTPLANE_NATS_URL: server.url },
    })
    try {
      await rotate.waitFor((s) => s.includes(notice), 20_000, 'stderr')
      assert.equal(readFileSync(credsFile, 'utf8'), old, 'nothing written while it waits')
    } finally {
      rmSync(lock, { recursive: true, force: true })
    }
    const r = await rotate.done()
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^user {7}relay \(rotated\)$/m)
    assert.notEqual(readFileSync(credsFile, 'utf8'), old, 'new creds written')
    const waits = r.stderr.split('\n').filter((l) => l.includes('waiting for the auth dir lock'))
    assert.equal(waits.length, 1, r.stderr)
    assert.ok(waits[0]!.startsWith(notice), waits[0])
  })
})
