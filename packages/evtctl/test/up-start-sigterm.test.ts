import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { failureLines, startGated, useGatedBus } from './support/gated-start.ts'

/**
 * `evtctl up` stopped (SIGTERM) while its relay starts, the relay's check of the stream unanswered (a stalled
 * server; a proxy holds the reply to every `$JS.API.STREAM.INFO.EVENTPLANE` request, so the relay never gets
 * active): the wait for the relay ends at the signal and the process stops as after any SIGTERM, exit 0 and
 * `stopped`. Before, `up` went on waiting for the relay (15 s) and evtctl's last resort ended it after 10 s,
 * exit 130.
 */
describe('evtctl up stopped while its relay starts', () => {
  const bus = useGatedBus('ep_cli_up_start_sigterm', '$JS.API.STREAM.INFO.EVENTPLANE')

  test("SIGTERM during the relay's stream check: exit 0, stopped, no ready line, no failure", async () => {
    const up = startGated(bus, ['up'], 'operator')
    assert.equal(await bus.gate.held, '$JS.API.STREAM.INFO.EVENTPLANE')
    const signalled = performance.now()
    up.child.kill('SIGTERM')
    const r = await up.done(30_000)
    const tookMs = Math.round(performance.now() - signalled)
    const failures = failureLines(r)
    assert.equal(r.code, 0, failures.join('\n'))
    assert.match(r.stdout, /^stopped$/m)
    assert.doesNotMatch(r.stdout, /ready/)
    assert.deepEqual(failures, [])
    assert.ok(bus.gate.holding, 'the stream check was never answered')
    console.log(`# exited ${tookMs} ms after SIGTERM`)
  })
})
