import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type RequestGate, startRequestGate } from '@eventplane/bus-nats/testing'
import { PROJECTOR_ROLE } from '@eventplane/runtime'
import { ROLES } from '@eventplane/store-pg'
import { type BusEnv, createBusEnv } from '@eventplane/bus-nats/testing'
import { killAll, startCli } from './helpers.ts'

/**
 * `evtctl run` stopped (SIGTERM) while it starts, its controller's consumer check unanswered (a stalled server;
 * a proxy holds the reply to every `$JS.API.CONSUMER.` request): the start ends at the signal and the process
 * stops as after any SIGTERM, exit 0 and `stopped`. Before, the controller's start went on until the request
 * timed out (5 s) and the command failed with it: exit 3, `bus.timeout: NATS did not answer in time`. Then the
 * runner's stop still waited for that check (exit 0 only after the 5 s timeout); now it gives the check up at
 * the signal (`controller.prepare_abandoned` logged), the reply still held.
 */
describe('evtctl run stopped while its start waits on NATS', () => {
  let env: BusEnv
  let gate: RequestGate

  before(async () => {
    env = await createBusEnv('ep_cli_run_start_sigterm')
    gate = await startRequestGate(env.server.port, '$JS.API.CONSUMER.')
  })
  after(async () => {
    killAll()
    await gate?.close()
    await env?.cleanup()
  })

  test("SIGTERM during the controller's consumer check: exit 0, stopped, no ready line, no failure", async () => {
    const run = startCli(['run'], {
      env: {
        EVENTPLANE_DATABASE_URL: env.db.url,
        EVENTPLANE_DATABASE_URL_PROJECTOR: env.db.roleUrl(PROJECTOR_ROLE),
        EVENTPLANE_DATABASE_URL_FACT_WRITER: env.db.roleUrl(ROLES.factWriter),
        EVENTPLANE_NATS_URL: gate.url,
        EVENTPLANE_NATS_CREDS: env.server.credentials.controller!.creds,
        EVENTPLANE_DOMAIN: '@eventplane/example-deployments',
      },
      timeoutMs: 90_000,
    })
    assert.equal(await gate.held, '$JS.API.CONSUMER.INFO.EVENTPLANE.ctl_deployments')
    const signalled = performance.now()
    run.child.kill('SIGTERM')
    const r = await run.done(30_000)
    const tookMs = Math.round(performance.now() - signalled)
    assert.equal(
      r.code,
      0,
      r.stderr
        .split('\n')
        .filter((l) => l.startsWith('evtctl:'))
        .join('\n'),
    )
    assert.match(r.stdout, /^stopped$/m)
    assert.doesNotMatch(r.stdout, /ready/)
    assert.deepEqual(
      r.stderr.split('\n').filter((l) => l.startsWith('evtctl:')),
      [],
    )
    // The check was given up at the signal, not waited for until it timed out (5 s): its reply still held.
    assert.ok(gate.holding, 'the consumer check was never answered')
    const abandoned = r.stderr.split('\n').filter((l) => l.includes('"event":"controller.prepare_abandoned"'))
    assert.equal(abandoned.length, 1, 'the controller gave up its consumer check at the stop')
    console.log(`# exited ${tookMs} ms after SIGTERM`)
  })
})
