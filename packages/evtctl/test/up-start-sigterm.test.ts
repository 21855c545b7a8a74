import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type RequestGate, startRequestGate } from '@eventplane/bus-nats/testing'
import { type BusEnv, createBusEnv } from '@eventplane/bus-nats/testing'
import { killAll, startCli } from './helpers.ts'

/**
 * `evtctl up` stopped (SIGTERM) while its relay starts, the relay's check of the stream unanswered (a stalled
 * server; a proxy holds the reply to every `$JS.API.STREAM.INFO.EVENTPLANE` request, so the relay never gets
 * active): the wait for the relay ends at the signal and the process stops as after any SIGTERM, exit 0 and
 * `stopped`. Before, `up` went on waiting for the relay (15 s) and evtctl's last resort ended it after 10 s,
 * exit 130.
 */
describe('evtctl up stopped while its relay starts', () => {
  let env: BusEnv
  let gate: RequestGate

  before(async () => {
    env = await createBusEnv('ep_cli_up_start_sigterm')
    gate = await startRequestGate(env.server.port, '$JS.API.STREAM.INFO.EVENTPLANE')
  })
  after(async () => {
    killAll()
    await gate?.close()
    await env?.cleanup()
  })

  test("SIGTERM during the relay's stream check: exit 0, stopped, no ready line, no failure", async () => {
    const up = startCli(['up'], {
      env: {
        EVENTPLANE_DATABASE_URL: env.db.url,
        EVENTPLANE_NATS_URL: gate.url,
        EVENTPLANE_NATS_CREDS: env.server.credentials.operator!.creds,
        EVENTPLANE_DOMAIN: '@eventplane/example-deployments',
      },
      timeoutMs: 90_000,
    })
    assert.equal(await gate.held, '$JS.API.STREAM.INFO.EVENTPLANE')
    const signalled = performance.now()
    up.child.kill('SIGTERM')
    const r = await up.done(30_000)
    const tookMs = Math.round(performance.now() - signalled)
    const failures = r.stderr.split('\n').filter((l) => l.startsWith('evtctl:'))
    assert.equal(r.code, 0, failures.join('\n'))
    assert.match(r.stdout, /^stopped$/m)
    assert.doesNotMatch(r.stdout, /ready/)
    assert.deepEqual(failures, [])
    assert.ok(gate.holding, 'the stream check was never answered')
    console.log(`# exited ${tookMs} ms after SIGTERM`)
  })
})
