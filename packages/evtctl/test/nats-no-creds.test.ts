import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startNatsServer, type TestNatsServer } from '@eventplane/bus-nats/testing'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { failureLine, killAll, runCli } from './helpers.ts'

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
})
