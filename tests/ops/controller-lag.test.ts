import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { EventFactory } from '@eventplane/core'
import { EventplaneMetrics } from '@eventplane/bus-nats'
import { ControllerRunner, controllerLiveSource } from '@eventplane/runtime'
import type { StatusReport } from '../../packages/evtctl/src/commands/status.ts'
import { type CliResult, killAll, pollCli, runCli } from '../../packages/evtctl/test/helpers.ts'
import { type BusEnv, appendIntents, createBusEnv, eventually } from '../../packages/bus-nats/test/fixtures.ts'
import { type ServiceChild, spawnRelay, spawnService } from '../faults/support/children.ts'
import lagDomain, { hold } from './lag-domain.js'
import { metric, operatorStatus } from './support.ts'

const LAG_DOMAIN = fileURLToPath(new URL('./lag-domain.js', import.meta.url))

describe('evtctl status --check judges controller lag from its JetStream consumer', () => {
  let env: BusEnv
  let relay: ServiceChild
  let gateway: ServiceChild
  /** evtctl status, the process; `polled` is the same in this process, for the polls (see pollCli). */
  const status = operatorStatus(runCli, () => env, { EVENTPLANE_DOMAIN: LAG_DOMAIN })
  const polled = operatorStatus(pollCli, () => env, { EVENTPLANE_DOMAIN: LAG_DOMAIN })
  const checkLines = (r: CliResult): string[] => r.stdout.split('\n').filter((l) => l.startsWith('check '))

  before(async () => {
    env = await createBusEnv('ep_ops_controller_lag')
    relay = spawnRelay(env, 'default')
    gateway = spawnService(env, 'gateway')
    // Generous: on this shared machine a tsx process took over 20 s to start under load.
    await Promise.all([relay.waitForLog('relay active', 120_000), gateway.waitForLog('gateway serving', 120_000)])
  })
  after(async () => {
    hold.release()
    killAll()
    await Promise.allSettled([relay?.kill(), gateway?.kill()])
    await env.cleanup()
  })

  test('a held controller lags: --check exits 3 naming it; released and caught up, it exits 0', async () => {
    // Before any runner: the domain names `held`, and its consumer does not exist.
    await eventually(async () => checkLines(await polled('--check')).length === 1, 'every other check to pass')
    const missing = await status('--check')
    assert.equal(missing.code, 3, missing.stderr)
    assert.deepEqual(checkLines(missing), [
      'check       unhealthy: controller held has no consumer ctl_held (never started, or the consumer was deleted)',
    ])

    hold.engage()
    const metrics = new EventplaneMetrics()
    const scrape = (series: string): Promise<number> => metrics.render().then((text) => metric(text, series))
    const runner = new ControllerRunner({
      controller: lagDomain.controllers[0]!,
      store: env.facts,
      live: controllerLiveSource(await env.natsAs('controller'), lagDomain.controllers[0]!),
      registry: lagDomain.registry(),
      metrics,
    })
    await runner.start()
    try {
      await appendIntents(env.intents, 'acme', 12, 4)
      await eventually(() => hold.entered >= 1, 'a reconcile to be held')
      await eventually(async () => {
        const polledReport = JSON.parse((await polled('--check', '--max-lag', '5', '--json')).stdout) as StatusReport
        return polledReport.controllers?.list.find((c) => c.name === 'held')?.lag === '12'
      }, 'status to see the 12 unreconciled intents')
      const lagging = await status('--check', '--max-lag', '5', '--json')
      assert.equal(lagging.code, 3, lagging.stderr)
      const report = JSON.parse(lagging.stdout) as StatusReport
      assert.deepEqual(report.check?.problems, ['controller held lags 12 events (more than 5)'])
      const held = report.controllers!.list[0]!
      assert.deepEqual([held.consumer, held.found, held.expected], ['ctl_held', true, true])
      assert.equal(BigInt(held.pending!) + BigInt(held.ack_pending!), 12n)
      const human = await status('--check', '--max-lag', '5')
      assert.equal(human.code, 3)
      assert.deepEqual(checkLines(human), ['check       unhealthy: controller held lags 12 events (more than 5)'])
      assert.match(human.stdout, /^controller +held \(ctl_held\): lag 12 \(\d+ pending, \d+ unacknowledged\)/m)
      assert.match(human.stderr, /^evtctl: bus\.unavailable: status --check: 1 problem /m)
      // Within the bound it is not a problem.
      assert.equal((await status('--check', '--max-lag', '12')).code, 0)
      // The process's own gauge says the same (one lag definition, bus-nats consumerLag).
      assert.equal(await scrape('eventplane_controller_lag_events{controller="held"}'), 12)

      hold.release()
      await eventually(
        async () => (await polled('--check', '--max-lag', '0', '--json')).code === 0,
        'status --check to pass once the controller caught up',
      )
      const caughtUp = await status('--check', '--max-lag', '0', '--json')
      const done = JSON.parse(caughtUp.stdout) as StatusReport
      assert.equal(done.controllers?.list[0]?.lag, '0')
      assert.deepEqual(done.check?.problems, [])
      // Without the domain the consumer is still listed, as a controller nobody named.
      const bare = await runCli(['status', '--stuck-after', '3600000', '--json'], {
        env: {
          EVENTPLANE_DATABASE_URL: env.db.url,
          EVENTPLANE_NATS_URL: env.server.url,
          EVENTPLANE_NATS_CREDS: env.server.credentials.operator!.creds,
        },
        timeoutMs: 120_000,
      })
      const unnamed = (JSON.parse(bare.stdout) as StatusReport).controllers
      assert.equal(unnamed?.domain, null)
      assert.deepEqual(
        unnamed?.list.map((c) => [c.name, c.consumer, c.found, c.expected]),
        [['held', 'ctl_held', true, false]],
      )
      assert.equal(await scrape('eventplane_controller_lag_events{controller="held"}'), 0)
      assert.equal(await scrape('eventplane_controller_reconciled_total{controller="held"}'), 12)

      // A poison intent is parked (terminated, reconcile_failed appended): counted, and no lag left behind.
      const acme = EventFactory.forTenant('acme', { causedBy: 'user:test' })
      const poison = { tenant: 'acme', category: 'deployment', id: 'poison' }
      await env.intents.append(poison, [acme.intent(poison, 'poison', {})])
      await eventually(
        async () => (await scrape('eventplane_controller_parked_total{controller="held"}')) === 1,
        'the poison intent to be parked',
      )
      await eventually(
        async () => (await scrape('eventplane_controller_lag_events{controller="held"}')) === 0,
        'the parked intent to leave no lag',
      )
    } finally {
      hold.release()
      await runner.stop()
    }
    // The gateway is part of the check too (unless --no-nats).
    await gateway.kill('SIGTERM')
    const noGateway = await status('--check')
    assert.equal(noGateway.code, 3, noGateway.stderr)
    assert.deepEqual(checkLines(noGateway), [
      'check       unhealthy: the gateway is not answering: nobody answers to probe eventplane-api.submit.evtctl-probe.evtctl.status',
    ])
  })
})
