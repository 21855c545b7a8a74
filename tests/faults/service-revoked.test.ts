import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { PROJECTOR_ROLE } from '@eventplane/runtime'
import { ROLES } from '@eventplane/store-pg'
import { type BusEnv, type ServiceProcess, createBusEnv, within } from '../../packages/bus-nats/test/fixtures.ts'
import { spawnEvtctl, spawnService } from './support/children.ts'

/** The exit code and the one non-JSON stderr line (evtctl's failure line) of a service that ended. */
async function ending(service: ServiceProcess, what: string): Promise<{ code: number | null; line: string }> {
  const child = service.process
  const exited =
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => child.once('exit', () => resolve()))
  await within(exited, 20_000, `${what} to exit on its own (it went on running with its connection closed)`)
  const lines = service.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('evtctl: '))
  assert.equal(lines.length, 1, `${what}: one failure line; logs: ${JSON.stringify(service.logs.slice(-5))}`)
  return { code: child.exitCode, line: lines[0]!.msg! }
}

/** The parts of the example domain that `evtctl run` runs on one connection, in the order they start. */
const RUNTIME_PARTS = ['controller deployments', 'projection deployment_status', 'projection audit']

/**
 * Waits for `service` to end and asserts how: exit 4 (restarting with the same credentials will not help; exit 3
 * would say "retry later") and the one line `bus.auth_failed`: `lead`, the connection and its `user`, the
 * server's reason and, for a process of several parts (`stopped`), every part it stopped, whichever noticed
 * first. Returns the line.
 */
async function endsRevoked(
  service: ServiceProcess,
  what: string,
  expected: { lead: string; user: string; stopped?: string[] },
): Promise<string> {
  const { code, line } = await ending(service, what)
  assert.equal(code, 4, line)
  const stopped = expected.stopped === undefined ? '' : `; stopped: ${expected.stopped.join(', ')}`
  assert.equal(
    line,
    `evtctl: bus.auth_failed: ${expected.lead}: the NATS connection (user ${expected.user}) was closed (Authorization Violation): its credentials were refused or revoked${stopped}`,
  )
  return line
}

/**
 * A service whose NATS connection the server closes for good (its user revoked: the server ends the
 * connection and refuses every reconnect) must not sit there looking alive: the command ends, non-zero,
 * saying so, for its supervisor to see and restart it with valid credentials.
 */
describe('faults: a service whose NATS user is revoked ends with an error', () => {
  let env: BusEnv
  before(async () => {
    env = await createBusEnv('ep_fault_revoked')
  })
  after(async () => {
    await env?.cleanup()
  })

  test('evtctl gateway and evtctl relay exit 4 with one bus.auth_failed line once their users are revoked', async (t) => {
    const gateway = spawnService(env, 'gateway')
    const relay = spawnService(env, 'relay')
    try {
      await Promise.all([gateway.waitForLog('gateway serving'), relay.waitForLog('relay active')])
      await env.server.revokeServiceUsers(['gateway', 'relay'])

      const g = await endsRevoked(gateway, 'evtctl gateway', {
        lead: 'the gateway subscription closed',
        user: 'gateway',
      })
      const r = await endsRevoked(relay, 'evtctl relay', { lead: 'relay default', user: 'relay' })
      t.diagnostic(`gateway: ${g}; relay: ${r}`)
    } finally {
      await Promise.allSettled([gateway.kill(), relay.kill()])
    }
  })

  test("evtctl run (a domain's controllers and projections) exits 4 with one bus.auth_failed line once its user is revoked", async (t) => {
    // The runner tier: its two PostgreSQL roles and the controller user's creds (as docs/deploying.md runs it).
    const run = spawnEvtctl(['run'], 'evtctl run', {
      EVENTPLANE_DATABASE_URL: env.db.url,
      EVENTPLANE_DATABASE_URL_PROJECTOR: env.db.roleUrl(PROJECTOR_ROLE),
      EVENTPLANE_DATABASE_URL_FACT_WRITER: env.db.roleUrl(ROLES.factWriter),
      EVENTPLANE_NATS_URL: env.server.url,
      EVENTPLANE_NATS_CREDS: env.server.credentials.controller!.creds,
      EVENTPLANE_DOMAIN: '@eventplane/example-deployments',
    })
    try {
      await run.waitForLog('serving', 60_000)
      await env.server.revokeServiceUsers(['controller'])

      // The parts share one connection: one line names it, its user and every part, whichever noticed first.
      const line = await endsRevoked(run, 'evtctl run', { lead: 'run', user: 'controller', stopped: RUNTIME_PARTS })
      t.diagnostic(`run: ${line}`)
    } finally {
      await run.kill()
    }
  })

  test('evtctl up (gateway, relay, controllers and projections on one user) exits 4 with one bus.auth_failed line once that user is revoked', async (t) => {
    const up = spawnEvtctl(['up'], 'evtctl up', {
      EVENTPLANE_DATABASE_URL: env.db.url,
      EVENTPLANE_NATS_URL: env.server.url,
      EVENTPLANE_NATS_CREDS: env.server.credentials.operator!.creds,
      EVENTPLANE_DOMAIN: '@eventplane/example-deployments',
    })
    try {
      await up.waitForLog('serving', 60_000)
      // Last in this file: the test's own connections (the operator's) are revoked too.
      await env.server.revokeServiceUsers(['operator'])

      // Every part's connection is closed: one line names the user and every part, whichever noticed first.
      const line = await endsRevoked(up, 'evtctl up', {
        lead: 'up',
        user: 'operator',
        stopped: ['gateway', 'relay default', ...RUNTIME_PARTS],
      })
      t.diagnostic(`up: ${line}`)
    } finally {
      await up.kill()
    }
  })
})
