import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startNatsServer, type TestNatsServer } from '@eventplane/bus-nats/testing'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { killAll, startCli } from './helpers.ts'

const DOMAIN = '@eventplane/example-deployments'

/** A service's settings as `user` (its creds) against `db` and `nats`. */
const serviceEnv = (db: TestDatabase, nats: TestNatsServer, user: string) => ({
  EVENTPLANE_DATABASE_URL: db.url,
  EVENTPLANE_NATS_URL: nats.url,
  EVENTPLANE_NATS_CREDS: nats.credentials[user]!.creds,
})
/** `evtctl run` of the example domain as `user`. */
const startRun = (db: TestDatabase, nats: TestNatsServer, user: string) =>
  startCli(['run'], { env: { ...serviceEnv(db, nats, user), EVENTPLANE_DOMAIN: DOMAIN } })

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
    const env = (user: string) => serviceEnv(db, nats, user)
    const run = startRun(db, nats, 'controller')
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

interface Waiting {
  time: number
  retry_in_ms: number
}

/** The runner's 'controller waiting for its consumer' warnings so far (pino's JSON lines on stderr). */
function waitings(stderr: string): Waiting[] {
  return stderr
    .split('\n')
    .filter((l) => l.includes('"controller waiting for its consumer"'))
    .map((l) => JSON.parse(l) as Waiting)
}

describe('evtctl run waiting for the EVENTPLANE stream: the retry never gives up and a stop does not wait for it', () => {
  let db: TestDatabase
  let nats: TestNatsServer

  before(async () => {
    db = await createTestDatabase('ep_run_before_stream_retry')
    nats = await startNatsServer()
  })
  after(async () => {
    killAll()
    await nats?.stop()
    await db?.drop()
  })

  test('seven tries, each after its delay (250 ms doubling, capped at 10 s); SIGTERM in the 10 s wait: exit 0 before it ends', async () => {
    const run = startRun(db, nats, 'controller')
    await run.waitFor((err) => waitings(err).length >= 7, 60_000, 'stderr')
    const seen = waitings(run.stderr)
    assert.deepEqual(
      seen.map((w) => w.retry_in_ms),
      [250, 500, 1000, 2000, 4000, 8000, 10_000],
    )
    // Each try waited its delay (a loop that did not sleep logs the same delays within milliseconds).
    for (let i = 1; i < seen.length; i++)
      assert.ok(seen[i]!.time - seen[i - 1]!.time >= seen[i - 1]!.retry_in_ms - 1, `try ${i + 1} came early`)
    assert.doesNotMatch(run.stdout, /^ready: /m)

    // Stopped during the 10 s wait: the stop ends the wait (the runner's abort signal), not the wait's end.
    run.child.kill('SIGTERM')
    const r = await run.done(30_000)
    const exited = Date.now()
    assert.equal(r.code, 0, r.stderr.slice(-2000))
    assert.equal(waitings(r.stderr).length, 7, 'no try after the stop')
    assert.ok(exited < seen[6]!.time + 10_000, `exited ${exited - seen[6]!.time} ms after the last warning`)
  })

  test('a consumer check refused for another reason than an absent stream or NATS (bus.forbidden) ends the run: no retry', async () => {
    // The gateway's user may publish nothing but replies: its consumer check is refused, which waiting cannot change.
    const run = startRun(db, nats, 'gateway')
    const r = await run.done(60_000)
    assert.notEqual(r.code, 0, r.stderr.slice(-2000))
    assert.equal(r.signal, null, 'exited by itself')
    assert.match(r.stderr, /bus\.forbidden/)
    assert.equal(waitings(r.stderr).length, 0, 'no retry')
  })
})
