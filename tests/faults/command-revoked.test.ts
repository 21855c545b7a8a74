import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { SUBMIT_SUBJECTS } from '@eventplane/bus-nats'
import { type StalledProxy, startStalledProxy } from '@eventplane/bus-nats/testing'
import { type BusEnv, type ServiceProcess, createBusEnv, within } from '../../packages/bus-nats/test/fixtures.ts'
import { spawnEvtctl } from './support/children.ts'

/** `evtctl <args>` as `tenant` (its creds, `--tenant`), through `natsUrl`, logging at info. */
function asTenant(env: BusEnv, tenant: string, args: string[], natsUrl = env.server.url): ServiceProcess {
  return spawnEvtctl([...args, '--tenant', tenant], `evtctl ${args.join(' ')}`, {
    EVENTPLANE_DATABASE_URL: env.db.url,
    EVENTPLANE_NATS_URL: natsUrl,
    EVENTPLANE_NATS_CREDS: env.server.credentials[tenant]!.creds,
    EVENTPLANE_LOG_LEVEL: 'info',
  })
}

/** The exit code and the one failure line (`evtctl: …` on stderr) of a command that ended on its own. */
async function ending(command: ServiceProcess, what: string): Promise<{ code: number | null; line: string }> {
  const child = command.process
  const exited =
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => child.once('exit', () => resolve()))
  await within(exited, 20_000, `${what} to exit on its own`)
  const lines = command.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('evtctl: '))
  assert.equal(
    lines.length,
    1,
    `${what}: one failure line; exit ${child.exitCode}; logs: ${JSON.stringify(command.logs.slice(-4))}`,
  )
  return { code: child.exitCode, line: lines[0]!.msg! }
}

/**
 * `evtctl tail` and `evtctl subscribe` (a durable consumer) whose connection the server closes for good (the
 * tenant revoked) end as a service does: exit 4 and one `bus.auth_failed` line naming the connection's user and
 * the server's reason. Before, tail and subscribe ended as if the stream had simply ended (exit 0, nothing said),
 * and `subscribe --count` with exit 3 (`bus.unavailable: … closed connection`: "retry later").
 */
describe('faults: tail and subscribe whose tenant is revoked, or whose server stops answering', () => {
  let env: BusEnv
  before(async () => {
    env = await createBusEnv('ep_fault_cmd_revoked', ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark'])
  })
  after(async () => {
    await env?.cleanup()
  })

  const cases = [
    { tenant: 'acme', args: ['tail'], ready: 'tail ready', lead: 'tail' },
    { tenant: 'globex', args: ['subscribe'], ready: 'subscription ready', lead: 'subscribe' },
    { tenant: 'initech', args: ['subscribe', '--count', '5'], ready: 'subscription ready', lead: 'subscribe' },
  ]
  for (const { tenant, args, ready, lead } of cases) {
    test(`evtctl ${args.join(' ')} exits 4 with one bus.auth_failed line once its tenant is revoked`, async (t) => {
      const command = asTenant(env, tenant, args)
      try {
        await command.waitForLog(ready, 60_000)
        await env.server.revokeTenant(tenant)
        const { code, line } = await ending(command, `evtctl ${args.join(' ')}`)
        t.diagnostic(line)
        assert.equal(code, 4, line)
        assert.match(
          line,
          new RegExp(
            `^evtctl: bus\\.auth_failed: ${lead}: the NATS connection \\(user ${tenant}\\) was closed \\(.+\\): its credentials were refused or revoked$`,
          ),
        )
      } finally {
        await command.kill()
      }
    })
  }

  test('evtctl publish exits 4 with one bus.auth_failed line when its tenant is revoked while it waits for the gateway', async (t) => {
    // A gateway that takes the request and never answers: the publish is still waiting when the server closes it.
    const gateway = await env.server.connect('gateway')
    let taken!: () => void
    const requested = new Promise<void>((resolve) => (taken = resolve))
    gateway.subscribe(SUBMIT_SUBJECTS, { queue: 'eventplane-gateway', callback: () => taken() })
    await gateway.flush()
    const command = asTenant(env, 'hooli', [
      'publish',
      'deployment/web-1',
      'deploy_requested',
      '--data',
      '{}',
      '--timeout',
      '60000',
    ])
    try {
      await within(requested, 30_000, 'the publish to reach the gateway')
      await env.server.revokeTenant('hooli')
      const { code, line } = await ending(command, 'evtctl publish')
      t.diagnostic(line)
      assert.equal(code, 4, line)
      assert.match(
        line,
        /^evtctl: bus\.auth_failed: publish: the NATS connection \(user hooli\) was closed \(.+\): its credentials were refused or revoked$/,
      )
    } finally {
      await command.kill()
      await gateway.close()
    }
  })

  test('evtctl subscribe --count exits 3 with one bus.unavailable line when the server stops answering', async (t) => {
    const proxy: StalledProxy = await startStalledProxy(env.server.port)
    const command = asTenant(env, 'umbrella', ['subscribe', '--count', '5'], proxy.url)
    try {
      await command.waitForLog('subscription ready', 60_000)
      proxy.stall()
      const { code, line } = await ending(command, 'evtctl subscribe --count')
      t.diagnostic(line)
      assert.equal(code, 3, line)
      assert.equal(
        line,
        'evtctl: bus.unavailable: consumer umbrella_tail: the NATS server stopped answering (heartbeats missed)',
      )
    } finally {
      await command.kill()
      await proxy.close()
    }
  })

  test('evtctl subscribe --count stopped by Ctrl-C while the server does not answer exits 0, saying nothing', async () => {
    const proxy: StalledProxy = await startStalledProxy(env.server.port)
    const command = asTenant(env, 'stark', ['subscribe', '--count', '5'], proxy.url)
    try {
      await command.waitForLog('subscription ready', 60_000)
      const exited = new Promise<number | null>((resolve) => command.process.once('exit', (code) => resolve(code)))
      // The pull in flight fails (heartbeats missed) after the Ctrl-C: that is the stop, not a failure.
      proxy.stall()
      command.process.kill('SIGINT')
      const code = await within(exited, 15_000, 'evtctl subscribe --count to stop')
      assert.deepEqual(
        command.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('evtctl: ')),
        [],
      )
      assert.equal(code, 0)
    } finally {
      await command.kill()
      await proxy.close()
    }
  })
})
