import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { PROJECTOR_ROLE } from '@eventplane/runtime'
import { ROLES } from '@eventplane/store-pg'
import { failureLines, startGated, useGatedBus } from './support/gated-start.ts'

/**
 * `evtctl run` stopped (SIGTERM) while it starts, its controller's consumer check unanswered (a stalled server;
 * a proxy holds the reply to every `$JS.API.CONSUMER.` request): the start ends at the signal and the process
 * stops as after any SIGTERM, exit 0 and `stopped`. Before, the controller's start went on until the request
 * timed out (5 s) and the command failed with it: exit 3, `bus.timeout: NATS did not answer in time`. Then the
 * runner's stop still waited for that check (exit 0 only after the 5 s timeout); now it gives the check up at
 * the signal (`controller.prepare_abandoned` logged), the reply still held.
 */
describe('evtctl run stopped while its start waits on NATS', () => {
  const bus = useGatedBus('ep_cli_run_start_sigterm', '$JS.API.CONSUMER.')

  test("SIGTERM during the controller's consumer check: exit 0, stopped, no ready line, no failure", async () => {
    const run = startGated(bus, ['run'], 'controller', {
      EVENTPLANE_DATABASE_URL_PROJECTOR: bus.env.db.roleUrl(PROJECTOR_ROLE),
      EVENTPLANE_DATABASE_URL_FACT_WRITER: bus.env.db.roleUrl(ROLES.factWriter),
    })
    assert.equal(await bus.gate.held, '$JS.API.CONSUMER.INFO.EVENTPLANE.ctl_deployments')
    const signalled = performance.now()
    run.child.kill('SIGTERM')
    const r = await run.done(30_000)
    const tookMs = Math.round(performance.now() - signalled)
    assert.equal(r.code, 0, failureLines(r).join('\n'))
    assert.match(r.stdout, /^stopped$/m)
    assert.doesNotMatch(r.stdout, /ready/)
    assert.deepEqual(failureLines(r), [])
    // The check was given up at the signal, not waited for until it timed out (5 s): its reply still held.
    assert.ok(bus.gate.holding, 'the consumer check was never answered')
    const abandoned = r.stderr.split('\n').filter((l) => l.includes('"event":"controller.prepare_abandoned"'))
    assert.equal(abandoned.length, 1, 'the controller gave up its consumer check at the stop')
    console.log(`# exited ${tookMs} ms after SIGTERM`)
  })
})
