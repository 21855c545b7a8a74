import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { type ValidEnvelope, EventFactory } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { killAll, runCli } from './helpers.ts'

const DEPTH = 10_000

interface Report {
  count: number
  shown: number
  nodes: { event_id: string; depth: number; start?: string; type: string; hidden_below?: number }[]
  orphans: { event_id: string; missing_parent: string }[]
  cycles: string[][]
  truncated: { beyond_limit: boolean; limit: number; below_max_depth: number } | null
}

describe('evtctl trace of deep and cyclic chains', () => {
  let db: TestDatabase
  const env = () => ({ EVENTPLANE_DATABASE_URL: db.url })
  let deepRoot: ValidEnvelope
  const loop = { root: '', a: '', b: '', d: '', orphan: '', missing: '' }

  before(async () => {
    db = await createTestDatabase('ep_cli_trace_deep')
    const intents = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    const facts = new PgEventStore(db.connect(ROLES.factWriter, 1))
    const deep = { tenant: 'acme', category: 'loop', id: 'deep' }
    deepRoot = EventFactory.forTenant('acme', { causedBy: 'user:alice' }).intent(deep, 'started', {})
    await intents.append(deep, [deepRoot])
    let parent = deepRoot
    let batch: ValidEnvelope[] = []
    for (let i = 1; i < DEPTH; i++) {
      parent = EventFactory.fromEvent(parent, { causedBy: 'controller:looper' }).fact(deep, 'looped', { i })
      batch.push(parent)
      if (batch.length === 1000 || i === DEPTH - 1) {
        await facts.append(deep, batch)
        batch = []
      }
    }

    // A cycle cannot be built through EventFactory (a parent exists before its child), so the test
    // chooses the ids: a is caused by b and b by a; d hangs off the cycle; an orphan points outside.
    const cyc = { tenant: 'acme', category: 'loop', id: 'cycle' }
    const root = EventFactory.forTenant('acme', { causedBy: 'user:alice' }).intent(cyc, 'started', {})
    await intents.append(cyc, [root])
    Object.assign(loop, {
      root: root.event_id,
      a: randomUUID(),
      b: randomUUID(),
      d: randomUUID(),
      orphan: randomUUID(),
      missing: randomUUID(),
    })
    // Built by hand (a cycle cannot come from a factory): the store validates what it did not see validated.
    const fact = (eventId: string, causationId: string, type: string) =>
      ({
        event_id: eventId,
        tenant_id: 'acme',
        kind: 'fact',
        stream: { category: 'loop', id: 'cycle' },
        type,
        schema_version: 1,
        data: {},
        correlation_id: root.correlation_id,
        causation_id: causationId,
        caused_by: 'controller:looper',
        occurred_at: new Date().toISOString(),
      }) as ValidEnvelope
    await facts.append(cyc, [
      fact(loop.a, loop.b, 'cycle_a'),
      fact(loop.b, loop.a, 'cycle_b'),
      fact(loop.d, loop.b, 'off_cycle'),
      fact(loop.orphan, loop.missing, 'orphaned'),
    ])
  })
  after(async () => {
    killAll()
    await db.drop()
  })

  test('a 10,000-deep chain prints in full with --max-depth, human and --json, without a stack overflow', async () => {
    const args = ['trace', deepRoot.correlation_id, '--tenant', 'acme', '--max-depth', String(DEPTH)]
    const json = await runCli([...args, '--json'], { env: env() })
    assert.equal(json.code, 0, json.stderr)
    const report = JSON.parse(json.stdout) as Report
    assert.equal(report.count, DEPTH)
    assert.equal(report.nodes.length, DEPTH)
    assert.deepEqual(
      report.nodes.map((n) => n.depth),
      Array.from({ length: DEPTH }, (_, i) => i),
    )
    assert.equal(report.truncated, null)

    const human = await runCli(args, { env: env() })
    assert.equal(human.code, 0, human.stderr)
    const lines = human.stdout.trimEnd().split('\n')
    assert.equal(lines.length, DEPTH)
    assert.match(lines[40]!, /^ {80}fact +looped /)
    assert.match(lines.at(-1)!, /^ {80}\[9999\] fact +looped /)
  })

  test('by default the tree is cut at depth 100 with a truncated line; --limit cuts the read', async () => {
    const human = await runCli(['trace', deepRoot.correlation_id, '--tenant', 'acme'], { env: env() })
    assert.equal(human.code, 0, human.stderr)
    const lines = human.stdout.trimEnd().split('\n')
    assert.equal(lines.length, 102)
    assert.match(lines.at(-1)!, /\.\.\. truncated: 9899 more events below depth 100 \(raise --max-depth\)$/)

    const json = await runCli(['trace', deepRoot.correlation_id, '--tenant', 'acme', '--json', '--limit', '500'], {
      env: env(),
    })
    const report = JSON.parse(json.stdout) as Report
    assert.equal(report.count, 500)
    assert.equal(report.nodes.length, 101)
    assert.equal(report.nodes.at(-1)!.hidden_below, 399)
    assert.deepEqual(report.truncated, { beyond_limit: true, limit: 500, below_max_depth: 399 })
    const limited = await runCli(['trace', deepRoot.correlation_id, '--tenant', 'acme', '--limit', '50'], {
      env: env(),
    })
    assert.match(limited.stdout.trimEnd().split('\n').at(-1)!, /^\.\.\. truncated: the chain has more than 50 events/)
  })

  test('a causation cycle and an orphan are shown explicitly; no event is dropped', async () => {
    const r = await runCli(['trace', loop.root, '--tenant', 'acme'], { env: env() })
    assert.equal(r.code, 0, r.stderr)
    const lines = r.stdout.trimEnd().split('\n')
    const at = (id: string) => lines.findIndex((l) => l.endsWith(id))
    assert.match(lines[0]!, /^intent +started /)
    assert.ok(lines.includes(`orphan: ${loop.orphan} was caused by ${loop.missing}, which is not in this chain`))
    assert.ok(at(loop.orphan) >= 0, r.stdout)
    assert.ok(
      lines.includes(`cycle: ${loop.a} -> ${loop.b} -> ${loop.a} (each caused by the one before; no root)`),
      r.stdout,
    )
    assert.match(lines[at(loop.a)]!, /^fact +cycle_a /)
    assert.match(lines[at(loop.b)]!, /^ {2}fact +cycle_b /)
    assert.match(lines[at(loop.d)]!, /^ {4}fact +off_cycle /)
    assert.ok(lines.includes(`    -> ${loop.a} (shown above: the causation cycle closes here)`), r.stdout)

    const json = JSON.parse((await runCli(['trace', loop.root, '--tenant', 'acme', '--json'], { env: env() })).stdout)
    const report = json as Report
    assert.equal(report.count, 5)
    assert.deepEqual(
      report.nodes.map((n) => n.event_id).sort(),
      [loop.root, loop.a, loop.b, loop.d, loop.orphan].sort(),
    )
    assert.deepEqual(report.cycles, [[loop.a, loop.b]])
    assert.deepEqual(report.orphans, [{ event_id: loop.orphan, missing_parent: loop.missing }])
    assert.deepEqual(
      report.nodes.map((n) => n.start ?? ''),
      ['root', 'orphan', 'cycle', '', ''],
    )
  })
})
