import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { ControllerRunner, controllerLiveSource } from '@eventplane/runtime'
import type { StatusReport } from '../../packages/evtctl/src/commands/status.ts'
import { type CliResult, killAll, runCli } from '../../packages/evtctl/test/helpers.ts'
import { type BusEnv, appendIntents, createBusEnv, eventually } from '../../packages/bus-nats/test/fixtures.ts'
import { type ServiceChild, spawnRelay, spawnService } from '../faults/support/children.ts'
import lagDomain, { hold } from './lag-domain.ts'

const LAG_DOMAIN = fileURLToPath(new URL('./lag-domain.ts', import.meta.url))

describe('evtctl status --check judges controller lag from its JetStream consumer', () => {
  let env: BusEnv
  let relay: ServiceChild
  let gateway: ServiceChild
  const status = (...args: string[]): Promise<CliResult> =>
    runCli(['status', ...args], {
      env: {
        EVENTPLANE_DATABASE_URL: env.db.url,
        EVENTPLANE_NATS_URL: env.server.url,
        EVENTPLANE_NATS_CREDS: env.server.credentials.operator!.creds,
        EVENTPLANE_DOMAIN: LAG_DOMAIN,
      },
    })
  const checkLines = (r: CliResult): string[] => r.stdout.split('\n').filter((l) => l.startsWith('check '))

  before(async () => {
    env = await createBusEnv('ep_ops_controller_lag')
    relay = spawnRelay(env, 'default')
    gateway = spawnService(env, 'gateway')
    await Promise.all([relay.waitForLog('relay active'), gateway.waitForLog('gateway serving')])
  })
  after(async () => {
    hold.release()
    killAll()
    await Promise.allSettled([relay?.kill(), gateway?.kill()])
    await env.cleanup()
  })

  test('a held controller lags: --check exits 3 naming it; released and caught up, it exits 0', async () => {
    // Before any runner: the domain names `held`, and its consumer does not exist.
    let missing = await status('--check')
    await eventually(async () => {
      missing = await status('--check')
      return checkLines(missing).length === 1
    }, 'every other check to pass')
    assert.equal(missing.code, 3, missing.stderr)
    assert.deepEqual(checkLines(missing), [
      'check       unhealthy: controller held has no consumer ctl_held (never started, or the consumer was deleted)',
    ])

    hold.engage()
    const runner = new ControllerRunner({
      controller: lagDomain.controllers[0]!,
      store: env.facts,
      live: controllerLiveSource(await env.natsAs('controller'), lagDomain.controllers[0]!),
      registry: lagDomain.registry(),
    })
    await runner.start()
    try {
      await appendIntents(env.intents, 'acme', 12, 4)
      await eventually(() => hold.entered >= 1, 'a reconcile to be held')
      let lagging = await status('--check', '--max-lag', '5', '--json')
      await eventually(async () => {
        lagging = await status('--check', '--max-lag', '5', '--json')
        const held = (JSON.parse(lagging.stdout) as StatusReport).controllers?.list.find((c) => c.name === 'held')
        return held?.lag === '12'
      }, 'status to see the 12 unreconciled intents')
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

      hold.release()
      let caughtUp = await status('--check', '--max-lag', '0', '--json')
      await eventually(async () => {
        caughtUp = await status('--check', '--max-lag', '0', '--json')
        return caughtUp.code === 0
      }, 'status --check to pass once the controller caught up')
      const done = JSON.parse(caughtUp.stdout) as StatusReport
      assert.equal(done.controllers?.list[0]?.lag, '0')
      assert.deepEqual(done.check?.problems, [])
    } finally {
      hold.release()
      await runner.stop()
    }
  })
})
