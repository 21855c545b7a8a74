import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type TestNatsServer, startNatsServer } from '@eventplane/bus-nats/testing'
import { type TestDatabase, createTestDatabase, holdXid } from '@eventplane/store-pg/testing'
import { eventually } from '../../packages/bus-nats/test/fixtures.ts'
import { type CliProcess, killAll, runCli, startCli } from '../../packages/evtctl/test/helpers.ts'
import { get, metric } from './support.ts'

describe('evtctl up --ops-port', () => {
  let db: TestDatabase
  let nats: TestNatsServer
  let up: CliProcess
  let env: Record<string, string>
  before(async () => {
    db = await createTestDatabase('ep_ops_up')
    nats = await startNatsServer({ withAuth: false })
    env = {
      EVENTPLANE_DATABASE_URL: db.url,
      EVENTPLANE_NATS_URL: nats.url,
      EVENTPLANE_DOMAIN: '@eventplane/example-deployments',
    }
    up = startCli(['up', '--json', '--log-level', 'warn', '--ops-port', '0'], { env })
    await up.waitFor((out) => out.includes('"ready":true'), 30_000)
  })
  after(async () => {
    killAll()
    await nats?.stop()
    await db?.drop()
  })

  test('metrics of the gateway, relay, controller and projections match a flow of published intents', async () => {
    const ready = JSON.parse(up.stdout.split('\n')[0]!) as { ops: string }
    assert.match(ready.ops, /^http:\/\/127\.0\.0\.1:\d+$/)
    const readyz = await get(ready.ops, '/readyz')
    assert.equal(readyz.status, 200, readyz.body)
    assert.deepEqual(Object.keys(JSON.parse(readyz.body).checks).sort(), ['nats', 'postgres', 'relay:default'])

    const intents = [
      ['web-1', 'create', { image: 'web:1', replicas: 2 }],
      ['web-2', 'create', { image: 'web:2', replicas: 1 }],
      ['web-3', 'create', { image: 'web:3', replicas: 3 }],
    ] as const
    for (const [id, type, data] of intents) {
      const r = await runCli(['publish', `acme/deployment/${id}`, type, '--data', JSON.stringify(data)], { env })
      assert.equal(r.code, 0, r.stderr)
    }
    const total = async (): Promise<number> =>
      Number((await db.admin<{ n: string }[]>`select count(*)::text as n from eventplane.events`)[0]!.n)
    let scrape = ''
    await eventually(async () => {
      scrape = (await get(ready.ops, '/metrics')).body
      const n = await total()
      return (
        n > intents.length &&
        metric(scrape, 'eventplane_relay_published_events_total{relay="default"}') === n &&
        metric(scrape, 'eventplane_projection_applied_events_total{projection="audit"}') === n &&
        metric(scrape, 'eventplane_controller_reconciled_total{controller="deployments"}') === intents.length &&
        // The lag gauges are queried at scrape time, racing the counters: one scrape may see a commit's
        // count but the checkpoint before it, so they too are waited for.
        metric(scrape, 'eventplane_projection_lag_events{projection="audit"}') === 0 &&
        metric(scrape, 'eventplane_relay_lag_events{relay="default"}') === 0 &&
        metric(scrape, 'eventplane_controller_lag_events{controller="deployments"}') === 0
      )
    }, 'the relay, the audit projection and the controller to account for every event')
    assert.equal(metric(scrape, 'eventplane_gateway_requests_total{tenant="acme",outcome="ok"}'), intents.length)
    assert.equal(metric(scrape, 'eventplane_controller_parked_total{controller="deployments"}'), 0)
    assert.equal(metric(scrape, 'eventplane_projection_live{projection="audit"}'), 1)
    assert.equal(metric(scrape, 'eventplane_projection_lag_events{projection="audit"}'), 0)
    assert.equal(metric(scrape, 'eventplane_relay_lag_events{relay="default"}'), 0)
    assert.equal(metric(scrape, 'eventplane_controller_lag_events{controller="deployments"}'), 0)
  })
  test('a transaction holding an xid holds the audit projection and the relay back; their lag shows it until it ends', async () => {
    const ready = JSON.parse(up.stdout.split('\n')[0]!) as { ops: string }
    const lags = async (): Promise<[number, number]> => {
      const scrape = (await get(ready.ops, '/metrics')).body
      return [
        metric(scrape, 'eventplane_projection_lag_events{projection="audit"}'),
        metric(scrape, 'eventplane_relay_lag_events{relay="default"}'),
      ]
    }
    await eventually(async () => (await lags()).every((n) => n === 0), 'the projection and relay to catch up')
    const [head] = await db.admin<
      { p: string }[]
    >`select coalesce(max(global_position), 0)::text as p from eventplane.events`
    // An xid taken before the intent's append commits: neither the relay nor the projection may read past it.
    const held = await holdXid(db.admin)
    try {
      const r = await runCli(
        ['publish', 'acme/deployment/held-1', 'create', '--data', '{"image":"web:9","replicas":1}'],
        {
          env,
        },
      )
      assert.equal(r.code, 0, r.stderr)
      const [after] = await db.admin<{ n: string }[]>`
        select count(*)::text as n from eventplane.events where global_position > ${head!.p}::bigint`
      const committed = Number(after!.n)
      assert.ok(committed > 0)
      await eventually(
        async () => (await lags()).every((n) => n === committed),
        'the projection and relay lag to count the held-back events',
      )
    } finally {
      await held.release()
    }
    await eventually(
      async () => (await lags()).every((n) => n === 0),
      'the lag to return to 0 once the transaction ends',
    )
  })
  test('evtctl run serves the ops endpoints from EVENTPLANE_OPS_PORT: ready once its pools and NATS answer', async () => {
    const run = startCli(['run', '--json', '--log-level', 'warn'], { env: { ...env, EVENTPLANE_OPS_PORT: '0' } })
    try {
      await run.waitFor((out) => out.includes('"ready":true'), 30_000)
      const ready = JSON.parse(run.stdout.split('\n')[0]!) as { ops: string }
      assert.match(ready.ops, /^http:\/\/127\.0\.0\.1:\d+$/)
      const readyz = await get(ready.ops, '/readyz')
      assert.equal(readyz.status, 200, readyz.body)
      assert.deepEqual(Object.keys(JSON.parse(readyz.body).checks).sort(), [
        'nats',
        'postgres:eventplane_fact_writer',
        'postgres:eventplane_projector',
      ])
      assert.match((await get(ready.ops, '/metrics')).body, /eventplane_projection_live\{projection="audit"\} 1/)
    } finally {
      run.child.kill('SIGTERM')
      assert.equal((await run.done(15_000)).code, 0)
    }
  })
})
