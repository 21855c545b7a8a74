import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type ValidEnvelope, EventFactory } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { failureLine, killAll, runCli } from './helpers.ts'

interface JsonNode {
  event_id: string
  depth: number
  start?: string
  kind: string
  type: string
  stream: string
  causation_id: string | null
  caused_by?: string
}

describe('evtctl trace', () => {
  let db: TestDatabase
  const env = () => ({ EVENTPLANE_DATABASE_URL: db.url })
  let root: ValidEnvelope
  let started: ValidEnvelope
  let otherRoot: ValidEnvelope

  before(async () => {
    db = await createTestDatabase('ep_cli_trace')
    const intents = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    const facts = new PgEventStore(db.connect(ROLES.factWriter, 1))
    const s = (id: string) => ({ tenant: 'acme', category: 'deployment', id })
    const user = EventFactory.forTenant('acme', { causedBy: 'user:alice' })
    root = user.intent({ category: 'deployment', id: 'web-1' }, 'deploy_requested', { image: 'web:1' })
    await intents.append(s('web-1'), [root])
    const ctl = EventFactory.fromEvent(root, { causedBy: 'controller:deployments' })
    started = ctl.fact({ category: 'deployment', id: 'web-1' }, 'deployment_started', {})
    const audited = ctl.fact({ category: 'audit', id: 'web-1' }, 'audit_recorded', {})
    await facts.append(s('web-1'), [started])
    await facts.append({ tenant: 'acme', category: 'audit', id: 'web-1' }, [audited])
    const done = EventFactory.fromEvent(started, { causedBy: 'controller:deployments' }).fact(
      { category: 'deployment', id: 'web-1' },
      'deployment_ready',
      {},
    )
    await facts.append(s('web-1'), [done])
    otherRoot = user.intent({ category: 'deployment', id: 'web-2' }, 'deploy_requested', { image: 'web:2' })
    await intents.append(s('web-2'), [otherRoot])
  })
  after(async () => {
    killAll()
    await db.drop()
  })

  test('prints the causation tree indented by causation, without actors', async () => {
    const r = await runCli(['trace', root.correlation_id, '--tenant', 'acme'], { env: env() })
    assert.equal(r.code, 0, r.stderr)
    const lines = r.stdout.trimEnd().split('\n')
    assert.equal(lines.length, 4)
    assert.match(lines[0]!, /^intent +deploy_requested {2}acme\/deployment\/web-1 v1 {2}\S+Z {2}[0-9a-f-]{36}$/)
    assert.match(lines[1]!, /^ {2}fact +deployment_started {2}acme\/deployment\/web-1 v2 /)
    assert.match(lines[2]!, /^ {4}fact +deployment_ready /)
    assert.match(lines[3]!, /^ {2}fact +audit_recorded {2}acme\/audit\/web-1 v1 /)
    assert.doesNotMatch(r.stdout, /alice|controller:/)
  })

  test('--show-actor adds caused_by; --json nests children and keeps ids', async () => {
    const human = await runCli(['trace', root.correlation_id, '--tenant', 'acme', '--show-actor'], { env: env() })
    assert.match(human.stdout.split('\n')[0]!, /by user:alice$/)
    const r = await runCli(['trace', root.correlation_id, '--tenant', 'acme', '--json'], { env: env() })
    assert.equal(r.code, 0, r.stderr)
    const report = JSON.parse(r.stdout) as { count: number; nodes: JsonNode[]; truncated: unknown }
    assert.equal(report.count, 4)
    assert.deepEqual(
      report.nodes.map((n) => [n.type, n.depth, n.start ?? '']),
      [
        ['deploy_requested', 0, 'root'],
        ['deployment_started', 1, ''],
        ['deployment_ready', 2, ''],
        ['audit_recorded', 1, ''],
      ],
    )
    assert.equal(report.nodes[0]!.event_id, root.event_id)
    assert.equal(report.nodes[1]!.event_id, started.event_id)
    assert.equal(report.nodes[2]!.causation_id, started.event_id)
    assert.equal(report.nodes[0]!.caused_by, undefined)
    assert.equal(report.truncated, null)
    const withActor = JSON.parse(
      (await runCli(['trace', root.correlation_id, '--tenant', 'acme', '--json', '--show-actor'], { env: env() }))
        .stdout,
    ) as { nodes: JsonNode[] }
    assert.equal(withActor.nodes[0]!.caused_by, 'user:alice')
    // Data stays out of every form: the root's payload holds the image web:1.
    for (const out of [human.stdout, r.stdout, JSON.stringify(withActor)]) assert.doesNotMatch(out, /web:1/)
    assert.equal('data' in report.nodes[0]!, false)
  })

  test('another tenant sees nothing of the chain', async () => {
    const r = await runCli(['trace', root.correlation_id, '--tenant', 'globex', '--json'], { env: env() })
    assert.equal(r.code, 0, r.stderr)
    assert.equal((JSON.parse(r.stdout) as { count: number }).count, 0)
  })

  test('an upper-case id finds the same chain; an unknown id says so', async () => {
    const upper = await runCli(['trace', otherRoot.correlation_id.toUpperCase(), '--tenant', 'acme'], { env: env() })
    assert.equal(upper.stdout.trim().split('\n').length, 1)
    // --json names the chain as the log does (lower case), so it compares equal to the events' ids.
    const json = await runCli(['trace', otherRoot.correlation_id.toUpperCase(), '--tenant', 'acme', '--json'], {
      env: env(),
    })
    const report = JSON.parse(json.stdout) as { correlation_id: string; count: number }
    assert.deepEqual([report.correlation_id, report.count], [otherRoot.correlation_id, 1])
    const none = await runCli(['trace', '00000000-0000-7000-8000-000000000000', '--tenant', 'acme'], { env: env() })
    assert.equal(none.code, 0)
    assert.match(none.stdout, /^no events with correlation id/)
  })

  test('a malformed id, a bad tenant or no tenant is exit 1 with one line', async () => {
    const cases: [string[], string][] = [
      [['trace', 'not-a-uuid', '--tenant', 'acme'], 'core.invalid_envelope'],
      [['trace', root.correlation_id, '--tenant', 'ac.me'], 'core.invalid_name'],
      [['trace', root.correlation_id], 'cli.bad_usage'],
      [['trace'], 'cli.bad_usage'],
    ]
    for (const [args, code] of cases) {
      const r = await runCli(args, { env: env() })
      assert.equal(r.code, 1, args.join(' '))
      assert.equal(failureLine(r).code, code, args.join(' '))
    }
  })
})
