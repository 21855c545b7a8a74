import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { createTestDatabase, eventually, type TestDatabase } from '@eventplane/store-pg/testing'
import { startNatsServer, type TestNatsServer } from '@eventplane/bus-nats/testing'
import { type CliProcess, killAll, runCli, startCli } from '../../packages/evtctl/test/helpers.ts'

/** Values that must never reach a log line: event data and the principal. */
const DATA_MARKER = 'datamarker-7f3a9c'
const PRINCIPAL_MARKER = 'principal-marker-51b2'

describe('logs over a whole demo flow carry ids, types and positions, never payloads, principals or creds', () => {
  let db: TestDatabase
  let nats: TestNatsServer
  let dir: string
  let up: CliProcess
  const env: Record<string, Record<string, string>> = {}
  /** The user JWTs and nkey seeds of the creds files in use. */
  const secrets: string[] = []

  before(async () => {
    db = await createTestDatabase('ep_logcapture')
    nats = await startNatsServer({ tenants: ['acme'] })
    dir = await mkdtemp(join(tmpdir(), 'ep-logcapture-'))
    for (const user of ['operator', 'acme']) {
      const creds = nats.credentials[user]!.creds
      secrets.push(...(await readFile(creds, 'utf8')).split('\n').filter((l) => /^(eyJ|SU)/.test(l)))
      env[user] = {
        EVENTPLANE_DATABASE_URL: db.url,
        EVENTPLANE_NATS_URL: nats.url,
        EVENTPLANE_NATS_CREDS: creds,
        EVENTPLANE_TENANT: 'acme',
        EVENTPLANE_DOMAIN: '@eventplane/example-deployments',
      }
    }
    up = startCli(['up', '--log-level', 'trace'], { env: env.operator })
    await up.waitFor((out) => /ready/.test(out), 30_000)
  })
  after(async () => {
    killAll()
    await nats?.stop()
    await db?.drop()
    await rm(dir, { recursive: true, force: true })
  })

  test('publish, reconcile, read, trace, state and export at trace level never log data or caused_by', async (t) => {
    const logs: string[] = []
    const run = async (args: string[], who = 'acme') => {
      const r = await runCli([...args, '--log-level', 'trace'], { env: env[who] })
      assert.equal(r.code, 0, r.stderr)
      logs.push(r.stderr)
      return r.stdout
    }
    const published = JSON.parse(
      await run([
        'publish',
        'acme/deployment/web',
        'create',
        '--data',
        JSON.stringify({ image: DATA_MARKER, replicas: 2 }),
        '--principal',
        PRINCIPAL_MARKER,
        '--json',
      ]),
    ) as { correlation_id: string }
    await run(['publish', 'acme/deployment/web', 'scale', '--data', '{"replicas":4}', '--principal', PRINCIPAL_MARKER])
    await eventually(
      async () => (await run(['state', 'deployment_status'])).includes('"replicas":4'),
      30_000,
      'reconciled',
    )
    await run(['read', 'acme/deployment/web'])
    await run(['trace', published.correlation_id])
    const exported = await run(['export'], 'operator')
    const withActor = await run(['export', '--include-actor'], 'operator')

    up.child.kill('SIGTERM')
    const stopped = await up.done(20_000)
    assert.equal(stopped.code, 0, stopped.stderr)
    logs.push(stopped.stderr)

    const all = logs.join('\n')
    t.diagnostic(`captured ${all.split('\n').filter(Boolean).length} log lines`)
    assert.ok(all.split('\n').filter(Boolean).length > 20, 'the flow logged at trace level')
    assert.ok(!all.includes(DATA_MARKER), 'no event data value in any log line')
    assert.ok(!all.includes(PRINCIPAL_MARKER), 'no principal (caused_by) in any log line')
    assert.equal(secrets.length, 4, 'a JWT and a seed per creds file')
    assert.ok(!secrets.some((s) => all.includes(s)), 'no creds (user JWT, nkey seed) in any log line')
    assert.ok(exported.includes(DATA_MARKER), 'the export itself carries the data')
    assert.ok(!exported.includes(PRINCIPAL_MARKER), 'an export redacts caused_by by default')
    assert.ok(withActor.includes(PRINCIPAL_MARKER), '--include-actor keeps it, for restores')
  })
})
