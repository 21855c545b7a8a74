import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startNatsServer, type TestNatsServer } from '@eventplane/bus-nats/testing'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { killAll, startCli } from './helpers.ts'

const DOMAIN = '@eventplane/example-deployments'

// docs/deploying.md: processes start in any order. On a new deployment (or after the stream was deleted) the
// EVENTPLANE stream exists only once a relay made it: a runner started first waits for it instead of exiting.
describe('evtctl run started before any relay made the EVENTPLANE stream', () => {
  let db: TestDatabase
  let nats: TestNatsServer

  before(async () => {
    db = await createTestDatabase('ep_run_before_stream')
    nats = await startNatsServer() // no tenant: nothing has created the stream yet
  })
  after(async () => {
    killAll()
    await nats?.stop()
    await db?.drop()
  })

  test('waits for the stream (a warning, no exit), then serves once a relay creates it; SIGTERM: exit 0', async () => {
    const env = (user: string) => ({
      EVENTPLANE_DATABASE_URL: db.url,
      EVENTPLANE_NATS_URL: nats.url,
      EVENTPLANE_NATS_CREDS: nats.credentials[user]!.creds,
    })
    const run = startCli(['run'], { env: { ...env('controller'), EVENTPLANE_DOMAIN: DOMAIN } })
    // Its controller starts first and finds no stream: it says it waits, and does not exit (exit 1 before).
    await run.waitFor((err) => err.includes('controller waiting for its consumer'), 60_000, 'stderr')
    assert.match(run.stderr, /stream EVENTPLANE does not exist yet/)
    assert.doesNotMatch(run.stdout, /^ready: /m)

    const relay = startCli(['relay', '--poll-ms', '200'], { env: env('relay') })
    await relay.waitFor((out) => out.startsWith('ready: '), 60_000)
    await run.waitFor((out) => /^ready: /m.test(out), 60_000)

    for (const service of [run, relay]) {
      service.child.kill('SIGTERM')
      const r = await service.done(30_000)
      assert.equal(r.code, 0, r.stderr.slice(-2000))
    }
  })
})
