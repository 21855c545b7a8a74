import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { StatusReport } from '../../packages/evtctl/src/commands/status.ts'
import { killAll, pollCli, runCli } from '../../packages/evtctl/test/helpers.ts'
import { type BusEnv, appendIntents, createBusEnv, eventually } from '../../packages/bus-nats/test/fixtures.ts'
import { spawnRelay } from '../faults/support/children.ts'
import { holdXid } from '@eventplane/store-pg/testing'

describe('evtctl status --check', () => {
  let env: BusEnv
  const checkRun =
    (cli: typeof runCli) =>
    (...args: string[]) =>
      cli(['status', '--check', '--no-nats', ...args], {
        env: { EVENTPLANE_DATABASE_URL: env.db.url, EVENTPLANE_NATS_URL: 'nats://127.0.0.1:1' },
        timeoutMs: 120_000,
      })
  /** evtctl status --check, the process; `polled` is the same in this process, for the polls (see pollCli). */
  const check = checkRun(runCli)
  const polled = checkRun(pollCli)

  before(async () => {
    env = await createBusEnv('ep_ops_status_check')
  })
  after(async () => {
    killAll()
    await env.cleanup()
  })

  test('exits 0 while the relay runs and has caught up, 3 with one line per problem once it is stopped', async () => {
    await appendIntents(env.intents, 'acme', 20, 10)
    const relay = spawnRelay(env, 'default')
    try {
      await relay.waitForLog('relay active')
      await eventually(async () => (await polled('--max-lag', '0')).code === 0, 'status --check to pass')
      const healthy = await check('--max-lag', '0')
      assert.equal(healthy.code, 0, healthy.stderr)
      assert.match(healthy.stdout, /^check +healthy$/m)
      const json = await check('--json', '--max-lag', '0')
      assert.equal(json.code, 0, json.stderr)
      assert.deepEqual((JSON.parse(json.stdout) as StatusReport).check?.problems, [])
    } finally {
      await relay.kill('SIGTERM')
    }
    await appendIntents(env.intents, 'acme', 5, 5, 'late')
    const dead = await check('--max-lag', '2')
    assert.equal(dead.code, 3, dead.stderr)
    const problems = dead.stdout.split('\n').filter((l) => l.startsWith('check '))
    assert.deepEqual(problems, [
      'check       unhealthy: relay default is not active (no live session holds its lease)',
      'check       unhealthy: relay default lags 5 events (more than 2)',
    ])
    assert.match(dead.stderr, /^evtctl: bus\.unavailable: status --check: 2 problems/m)
    const json = await check('--json', '--max-lag', '2')
    assert.equal(json.code, 3)
    const report = JSON.parse(json.stdout) as StatusReport
    assert.equal(report.check?.healthy, false)
    assert.equal(report.check?.problems.length, 2)
  })

  test('exits 3 while a transaction holds back the read longer than the bound', async () => {
    const relay = spawnRelay(env, 'default')
    try {
      await relay.waitForLog('relay active')
      await eventually(async () => (await polled()).code === 0, 'status --check to pass')
      const held = await holdXid(env.db.admin)
      try {
        await eventually(
          async () => (await polled('--stuck-after', '1000')).code === 3,
          'status --check to see the held transaction',
        )
        const stuck = await check('--stuck-after', '1000')
        assert.equal(stuck.code, 3, stuck.stderr)
        assert.match(stuck.stdout, /^check +unhealthy: transaction xid \d+ \(pid \d+\) holds back the log/m)
      } finally {
        await held.release()
      }
      await eventually(async () => (await polled('--stuck-after', '1000')).code === 0, 'status --check to pass again')
      assert.equal((await check('--stuck-after', '1000')).code, 0)
    } finally {
      await relay.kill('SIGTERM')
    }
  })

  test('exits 3 naming a projection that lags more than --max-lag', async () => {
    await appendIntents(env.intents, 'acme', 5, 5, 'projected')
    const relay = spawnRelay(env, 'default')
    try {
      await relay.waitForLog('relay active', 120_000)
      await eventually(
        async () => (await polled('--max-lag', '2', '--stuck-after', '3600000')).code === 0,
        'status --check to pass',
      )
      await env.db.admin`insert into eventplane.projection_checkpoints (projection, version, tx_id, global_position)
                         values ('behind', 1, '0'::xid8, 0)`
      const n = (await env.db.admin<{ n: string }[]>`select count(*)::text as n from eventplane.events`)[0]!.n
      const behind = await check('--max-lag', '2', '--stuck-after', '3600000')
      assert.equal(behind.code, 3, behind.stderr)
      assert.deepEqual(
        behind.stdout.split('\n').filter((l) => l.startsWith('check ')),
        [`check       unhealthy: projection behind lags ${n} events (more than 2)`],
      )
      assert.equal((await check('--max-lag', n, '--stuck-after', '3600000')).code, 0, 'within the bound it is healthy')
    } finally {
      await relay.kill('SIGTERM')
    }
  })
})
