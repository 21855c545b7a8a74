import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { startNatsServer, type TestNatsServer } from '@eventplane/bus-nats/testing'
import { PROJECTOR_ROLE, projectionDigest } from '@eventplane/runtime'
import { deploymentStatusProjection } from '@eventplane/example-deployments'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import type { StatusReport } from '../src/commands/status.ts'
import { type CliProcess, failureLine, killAll, runCli, startCli } from './helpers.ts'

interface Published {
  event_id: string
  correlation_id: string
}

describe('evtctl with the example deployments runtime (up, subscribe <name>, replay, trace)', () => {
  let db: TestDatabase
  let nats: TestNatsServer
  let up: CliProcess
  let env: Record<string, string>
  const facts = async (id: string) =>
    Number((await db.admin`select count(*) from eventplane.events where stream_id = ${id} and kind = 'fact'`)[0]!.count)
  const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await sleep(100)
    }
  }
  const publish = async (id: string, type: string, data: unknown): Promise<Published> => {
    const r = await runCli(['publish', `acme/deployment/${id}`, type, '--data', JSON.stringify(data), '--json'], {
      env,
    })
    assert.equal(r.code, 0, r.stderr)
    return JSON.parse(r.stdout) as Published
  }

  before(async () => {
    db = await createTestDatabase('ep_cli_runtime')
    nats = await startNatsServer({ withAuth: false })
    env = {
      EVENTPLANE_DATABASE_URL: db.url,
      EVENTPLANE_NATS_URL: nats.url,
      EVENTPLANE_DOMAIN: '@eventplane/example-deployments',
    }
    up = startCli(['up', '--json', '--log-level', 'warn'], { env })
    await up.waitFor((out) => out.includes('"ready":true'), 30_000)
  })
  after(async () => {
    killAll()
    await nats?.stop()
    await db?.drop()
  })

  test('up runs the controller and both projections and says so in its ready line', () => {
    const ready = JSON.parse(up.stdout.split('\n')[0]!) as { ready: boolean; runtime: string[]; relay_state: string }
    assert.deepEqual(ready.runtime.sort(), ['audit', 'deployment_status', 'deployments'])
    assert.equal(ready.relay_state, 'active')
  })

  test('trace shows the controller reacting to a published intent, indented by causation', async () => {
    const created = await publish('web-1', 'create', { image: 'web:1', replicas: 2 })
    await until('the controller facts', async () => (await facts('web-1')) >= 4)
    const r = await runCli(['trace', created.correlation_id, '--tenant', 'acme', '--show-actor'], { env })
    assert.equal(r.code, 0, r.stderr)
    const lines = r.stdout.trimEnd().split('\n')
    assert.match(lines[0]!, /^intent +create {2}acme\/deployment\/web-1 v1 .* by nats:acme$/)
    assert.ok(lines.length >= 5, r.stdout)
    for (const line of lines.slice(1))
      assert.match(line, /^ {2}fact +\S+ {2}acme\/deployment\/web-1 v\d+ .* by controller:deployments$/)
  })

  test('status lists both projections with their checkpoints', async () => {
    await until('the projection to see the facts', async () => {
      const [row] =
        await db.admin`select count(*)::int as n from eventplane.projection_state where projection = 'deployment_status'`
      return row!.n >= 1
    })
    const r = await runCli(['status', '--json'], { env })
    const report = JSON.parse(r.stdout) as StatusReport
    assert.deepEqual(report.projections.map((p) => p.name).sort(), ['audit', 'deployment_status'])
    assert.equal(report.gateway?.alive, true)
  })

  test('replay rebuilds a projection to the digest of the live one, with progress lines off a terminal', async () => {
    await publish('web-2', 'create', { image: 'web:2', replicas: 1 })
    await publish('web-2', 'scale', { replicas: 5 })
    await until('the scale fact', async () => (await facts('web-2')) >= 5)
    const projector = db.connect(PROJECTOR_ROLE, 2)
    let live = await projectionDigest(projector, deploymentStatusProjection)
    // Settled: the projection has applied the newest event of the log, and nothing more arrives for a while.
    await until('the live projection to settle', async () => {
      await sleep(300)
      const [row] = await db.admin`
        select (select max(global_position) from eventplane.events) = (select global_position from
          eventplane.projection_checkpoints where projection = 'deployment_status') as caught_up`
      const again = await projectionDigest(projector, deploymentStatusProjection)
      const settled = row!.caught_up === true && again.sha256 === live.sha256
      live = again
      return settled
    })
    const r = await runCli(['replay', 'deployment_status', '--json'], { env })
    assert.equal(r.code, 0, r.stderr)
    const result = JSON.parse(r.stdout) as {
      events: number
      checkpoint: string
      digest: { sha256: string; rows: number }
    }
    assert.equal(result.digest.sha256, live.sha256)
    assert.equal(result.digest.rows, 2)
    assert.match(result.checkpoint, /^\d+:\d+$/)
    assert.match(r.stderr, /^replay deployment_status: \d+\/\d+ events \(100%\), \d+ events\/s, ETA \S+$/m)
    const human = await runCli(['replay', 'deployment_status'], { env })
    assert.match(human.stdout, new RegExp(`^digest sha256:${live.sha256} \\(2 rows\\)$`, 'm'))
  })

  test('replay of an unknown projection is exit 1, one line, and touches nothing', async () => {
    const before =
      await db.admin`select projection, tx_id::text, global_position::text from eventplane.projection_checkpoints order by 1`
    const r = await runCli(['replay', 'no_such_projection'], { env })
    assert.equal(r.code, 1)
    const failure = failureLine(r)
    assert.equal(failure.code, 'runtime.unknown_projection')
    assert.match(failure.message, /known: deployment_status, audit/)
    const afterwards =
      await db.admin`select projection, tx_id::text, global_position::text from eventplane.projection_checkpoints order by 1`
    assert.deepEqual(afterwards, before)
    const bad = await runCli(['replay', 'a.b'], { env })
    assert.equal(bad.code, 1)
  })

  test('subscribe <projection> goes live, prints a ready line and stops on SIGINT', async () => {
    const s = startCli(['subscribe', 'audit', '--consumer', 'unused'], { env })
    await s.waitFor((out) => /^ready: projection audit v1 live at \d+:\d+; Ctrl-C to stop$/m.test(out), 30_000)
    s.child.kill('SIGINT')
    const r = await s.done(20_000)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^stopped$/m)
    const unknown = await runCli(['subscribe', 'nope'], { env })
    assert.equal(unknown.code, 1)
    assert.equal(failureLine(unknown).code, 'runtime.unknown_projection')
  })

  test('up shuts down cleanly on SIGTERM', async () => {
    up.child.kill('SIGTERM')
    const r = await up.done(30_000)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /"stopped":true/)
  })
})
