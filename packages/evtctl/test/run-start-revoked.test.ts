import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { PROJECTOR_ROLE } from '@eventplane/runtime'
import { ROLES } from '@eventplane/store-pg'
import { failureLines, startGated, useGatedBus } from './support/gated-start.ts'

/**
 * `evtctl run` whose NATS user is revoked while it starts (its controller's consumer check held by a proxy, the
 * user revoked meanwhile: the server closes the connection and refuses its reconnect, and nats.js fails the
 * check): the start fails as a part failing after it does, exit 4 and one `bus.auth_failed` line in the same
 * form: `run:` leading, the connection's user and the server's reason, then the parts stopped (those started and
 * the one starting) and those not started. Before, exit 3, `bus.unavailable: NATS is unavailable: connection
 * closed`: "retry later", which a supervisor would, with the same revoked credentials; then a line naming only
 * the part that was starting, in another form than the one after the start.
 */
describe('evtctl run whose user is revoked while it starts', () => {
  const bus = useGatedBus('ep_cli_run_start_revoked', '$JS.API.CONSUMER.')

  test("revoked during the controller's consumer check: exit 4, the run: line naming every part", async () => {
    const run = startGated(bus, ['run'], 'controller', {
      EVENTPLANE_DATABASE_URL_PROJECTOR: bus.env.db.roleUrl(PROJECTOR_ROLE),
      EVENTPLANE_DATABASE_URL_FACT_WRITER: bus.env.db.roleUrl(ROLES.factWriter),
    })
    assert.equal(await bus.gate.held, '$JS.API.CONSUMER.INFO.EVENTPLANE.ctl_deployments')
    await bus.env.server.revokeServiceUsers(['controller'])
    const r = await run.done(30_000)
    const failures = failureLines(r)
    assert.deepEqual(failures, [
      'evtctl: bus.auth_failed: run: the NATS connection (user controller) was closed (Authorization Violation): its credentials were refused or revoked; stopped: controller deployments; not started: projection deployment_status, projection audit',
    ])
    assert.equal(r.code, 4)
    assert.doesNotMatch(r.stdout, /ready/)
  })
})

/** The same for `evtctl up` while it waits for its relay to get active (the relay's stream check held): `up:`. */
describe('evtctl up whose user is revoked while its relay starts', () => {
  const bus = useGatedBus('ep_cli_up_start_revoked', '$JS.API.STREAM.INFO.EVENTPLANE')

  test("revoked during the relay's stream check: exit 4, the up: line naming every part", async () => {
    const up = startGated(bus, ['up'], 'operator')
    assert.equal(await bus.gate.held, '$JS.API.STREAM.INFO.EVENTPLANE')
    await bus.env.server.revokeServiceUsers(['operator'])
    const r = await up.done(30_000)
    const failures = failureLines(r)
    assert.deepEqual(failures, [
      'evtctl: bus.auth_failed: up: the NATS connection (user operator) was closed (Authorization Violation): its credentials were refused or revoked; stopped: gateway, relay default; not started: controller deployments, projection deployment_status, projection audit',
    ])
    assert.equal(r.code, 4)
    assert.doesNotMatch(r.stdout, /ready/)
  })
})

/** The same for `evtctl subscribe <projection>` while its projection's consumer is checked. */
describe('evtctl subscribe <projection> whose user is revoked while it starts', () => {
  const bus = useGatedBus('ep_cli_sub_start_revoked', '$JS.API.CONSUMER.')

  test("revoked during the projection's consumer check: exit 4, one bus.auth_failed line naming the projection", async () => {
    const sub = startGated(bus, ['subscribe', 'deployment_status'], 'controller', {
      EVENTPLANE_DATABASE_URL_PROJECTOR: bus.env.db.roleUrl(PROJECTOR_ROLE),
    })
    assert.equal(await bus.gate.held, '$JS.API.CONSUMER.INFO.EVENTPLANE.proj_deployment_status')
    await bus.env.server.revokeServiceUsers(['controller'])
    const r = await sub.done(30_000)
    const failures = failureLines(r)
    assert.deepEqual(failures, [
      'evtctl: bus.auth_failed: projection deployment_status: the NATS connection (user controller) was closed (Authorization Violation): its credentials were refused or revoked',
    ])
    assert.equal(r.code, 4)
  })
})
