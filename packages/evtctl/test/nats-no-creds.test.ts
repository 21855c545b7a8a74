import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startNatsServer, type TestNatsServer } from '@eventplane/bus-nats/testing'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { UNREACHABLE_NATS, failureLine, killAll, runCli } from './helpers.ts'

// A server of the account model (nats-setup) with no credentials configured: the most common first mistake.
describe('NATS credentials not given to a server that requires them', () => {
  let db: TestDatabase
  let nats: TestNatsServer

  before(async () => {
    db = await createTestDatabase('ep_cli_no_creds')
    nats = await startNatsServer({ tenants: ['acme'] })
  })
  after(async () => {
    killAll()
    await nats?.stop()
    await db?.drop()
  })

  const hint = /^NATS at nats:\/\/127\.0\.0\.1:\d+ requires credentials and none were given: pass --nats-creds <file>/

  test('a one-shot command and a service each say so in one line: exit 4, bus.auth_failed', async () => {
    const env = { EVENTPLANE_DATABASE_URL: db.url, EVENTPLANE_NATS_URL: nats.url }
    for (const args of [['tail', '--tenant', 'acme', '--count', '1'], ['relay']]) {
      const r = await runCli(args, { env })
      assert.equal(r.code, 4, `${args[0]}: ${r.stderr}`)
      const lines = r.stderr.split('\n').filter((l) => l.startsWith('evtctl: '))
      assert.equal(lines.length, 1, r.stderr)
      const m = /^evtctl: ([a-z_.]+): (.+)$/.exec(lines[0]!)!
      assert.equal(m[1], 'bus.auth_failed', args[0])
      assert.match(m[2]!, hint, args[0])
    }
  })

  test('wrong credentials keep their own line (refused, not missing)', async () => {
    const r = await runCli(['tail', '--tenant', 'acme', '--count', '1'], {
      env: { EVENTPLANE_NATS_URL: nats.url, EVENTPLANE_NATS_USER: 'nobody', EVENTPLANE_NATS_PASSWORD: 'x' },
    })
    assert.equal(r.code, 4, r.stderr)
    const failure = failureLine(r)
    assert.equal(failure.code, 'bus.auth_failed')
    assert.doesNotMatch(failure.message, /none were given/)
  })

  test('a creds file the server refuses keeps its own line too (given, not missing)', async () => {
    // The relay's JWT with another user's seed: the nonce's signature does not match the JWT, the server refuses.
    const other = await startNatsServer()
    const dir = mkdtempSync(join(tmpdir(), 'ep-no-creds-'))
    try {
      const seed = /-----BEGIN USER NKEY SEED-----\n(\S+)\n/
      const mine = readFileSync(nats.credentials.relay!.creds, 'utf8')
      const theirs = readFileSync(other.credentials.relay!.creds, 'utf8')
      const creds = join(dir, 'spliced.creds')
      writeFileSync(creds, mine.replace(seed.exec(mine)![1]!, seed.exec(theirs)![1]!), { mode: 0o600 })
      const r = await runCli(['tail', '--tenant', 'acme', '--count', '1'], {
        env: { EVENTPLANE_NATS_URL: nats.url, EVENTPLANE_NATS_CREDS: creds },
      })
      assert.equal(r.code, 4, r.stderr)
      const failure = failureLine(r)
      assert.equal(failure.code, 'bus.auth_failed')
      assert.doesNotMatch(failure.message, /none were given/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
      await other.stop()
    }
  })

  test('no credentials and no server listening: unavailable (exit 3), not a credentials hint', async () => {
    const r = await runCli(['tail', '--tenant', 'acme', '--count', '1'], {
      env: { EVENTPLANE_NATS_URL: UNREACHABLE_NATS },
    })
    assert.equal(r.code, 3, r.stderr)
    const failure = failureLine(r)
    assert.equal(failure.code, 'bus.unavailable')
    assert.doesNotMatch(failure.message, /none were given/)
  })
})
