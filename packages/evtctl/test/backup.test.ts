import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { EventFactory } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { createTestDatabase, eventually, type TestDatabase } from '@eventplane/store-pg/testing'
import { failureLine, killAll, runCli } from './helpers.ts'

describe('evtctl export, import and state', () => {
  let source: TestDatabase
  let target: TestDatabase
  let dir: string
  let correlationId: string
  const count = async (db: TestDatabase) =>
    (await db.admin`select count(*)::int as n from eventplane.events`)[0]!.n as number

  before(async () => {
    ;[source, target] = await Promise.all([createTestDatabase('ep_cli_export'), createTestDatabase('ep_cli_import')])
    dir = await mkdtemp(join(tmpdir(), 'ep-cli-backup-'))
    const s = { tenant: 'acme', category: 'deployment', id: 'web' }
    const intent = EventFactory.forTenant('acme', { causedBy: 'user:alice' }).intent(s, 'create', {
      image: 'nginx',
      replicas: 2,
    })
    correlationId = intent.correlation_id
    await new PgEventStore(source.connect(ROLES.intentWriter, 1)).append(s, [intent])
    await new PgEventStore(source.connect(ROLES.factWriter, 1)).append(s, [
      EventFactory.fromEvent(intent, { causedBy: 'controller:deployments' }).fact(s, 'scheduled', { replicas: 2 }),
    ])
    const g = { tenant: 'globex', category: 'deployment', id: 'api' }
    await new PgEventStore(source.connect(ROLES.intentWriter, 1)).append(g, [
      EventFactory.forTenant('globex', { causedBy: 'user:eve' }).intent(g, 'create', { image: 'api', replicas: 1 }),
    ])
    await source.admin`insert into eventplane.projection_state (projection, tenant_id, key, state) values
      ('deployment_status', 'acme', 'web', '{"replicas": 2}'), ('deployment_status', 'globex', 'api', '{"replicas": 1}')`
  })
  after(async () => {
    killAll()
    await Promise.all([source?.drop(), target?.drop(), rm(dir, { recursive: true, force: true })])
  })

  test('export writes one tenant as NDJSON in log order with lineage, caused_by redacted', async () => {
    let lines: string[] = []
    await eventually(async () => {
      const r = await runCli(['export', '--tenant', 'acme'], { env: { EVENTPLANE_DATABASE_URL: source.url } })
      assert.equal(r.code, 0, r.stderr)
      lines = r.stdout.trim().split('\n').filter(Boolean)
      return lines.length === 2
    })
    const events = lines.map((l) => JSON.parse(l))
    assert.deepEqual(
      events.map((e) => [e.tenant_id, e.type, e.caused_by]),
      [
        ['acme', 'create', 'redacted'],
        ['acme', 'scheduled', 'redacted'],
      ],
    )
    assert.equal(events[1].causation_id, events[0].event_id)
    assert.doesNotMatch(lines.join('\n'), /alice|user:eve|globex/)
    // Masked, its chain cannot verify: the refusal names the cause and both ways on, and writes nothing.
    const masked = join(dir, 'masked.ndjson')
    await writeFile(masked, `${lines.join('\n')}\n`)
    const r = await runCli(['import', masked, '--tenant', 'acme', '--allow-facts'], {
      env: { EVENTPLANE_DATABASE_URL: target.url },
    })
    assert.equal(r.code, 2, r.stderr)
    const failure = failureLine(r)
    assert.equal(failure.code, 'store.chain_broken')
    assert.match(
      failure.message,
      /^line 1: .* cannot be checked: its caused_by is masked \(an export without --include-actor\)/,
    )
    assert.match(failure.message, /export again with --include-actor, or import with --rehash: the chain is recomputed/)
    assert.match(failure.message, /heads saved or published before no longer match them$/)
    assert.equal(await count(target), 0)
  })

  test('export --stream writes that stream of the tenant only', async () => {
    const env = { EVENTPLANE_DATABASE_URL: source.url }
    const lines = async (stream: string) => {
      const r = await runCli(['export', '--tenant', 'acme', '--stream', stream], { env })
      assert.equal(r.code, 0, r.stderr)
      return r.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { stream: { id: string } })
    }
    assert.deepEqual(
      (await lines('deployment/web')).map((e) => e.stream.id),
      ['web', 'web'],
    )
    assert.deepEqual(await lines('deployment/api'), [], "globex's stream of that name is not acme's")
  })

  test('a chain exported with its actors restores into an empty database; a second import skips; a changed event is refused', async () => {
    const file = join(dir, 'chain.ndjson')
    const out = await runCli(
      ['export', '--tenant', 'acme', '--correlation', correlationId, '--include-actor', '--output', file],
      {
        env: { EVENTPLANE_DATABASE_URL: source.url },
      },
    )
    assert.equal(out.code, 0, out.stderr)
    assert.match(out.stderr, /exported 2 events/)
    const env = { EVENTPLANE_DATABASE_URL: target.url }
    const first = await runCli(['import', file, '--tenant', 'acme', '--allow-facts', '--json'], { env })
    assert.equal(first.code, 0, first.stderr)
    assert.deepEqual(JSON.parse(first.stdout), {
      imported: 2,
      skipped: 0,
      conflicts: [],
      counts: [
        { tenant: 'acme', kind: 'fact', events: 1 },
        { tenant: 'acme', kind: 'intent', events: 1 },
      ],
    })
    const again = await runCli(['import', file, '--tenant', 'acme', '--allow-facts'], { env })
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, /imported 0, skipped 2 already stored, 0 conflicts/)
    const chain = (await readFile(file, 'utf8')).trim().split('\n')
    const tampered = JSON.parse(chain[1]!)
    tampered.data = { replicas: 99 }
    const bad = join(dir, 'tampered.ndjson')
    await writeFile(bad, `${JSON.stringify(tampered)}\n`)
    const refused = await runCli(['import', bad, '--tenant', 'acme', '--allow-facts'], { env })
    assert.equal(refused.code, 2)
    assert.match(refused.stderr, /^evtctl: store\.chain_broken: line 1: the hash of acme\/deployment\/web version 2/)
    const rehashed = await runCli(['import', bad, '--tenant', 'acme', '--allow-facts', '--rehash'], { env })
    assert.equal(rehashed.code, 2)
    assert.match(rehashed.stderr, /evtctl: store\.idempotency_conflict: 1 events differ/)
    const [row] = await target.admin`select data from eventplane.events where event_id = ${tampered.event_id}`
    assert.deepEqual(row!.data, { replicas: 2 })
    assert.equal(await count(target), 2)
  })

  test('import of a malformed file is exit 1 with one line and writes nothing', async () => {
    const bad = join(dir, 'bad.ndjson')
    await writeFile(bad, '{"event_id":"nope"}\n')
    const r = await runCli(['import', bad, '--tenant', 'acme'], { env: { EVENTPLANE_DATABASE_URL: target.url } })
    assert.equal(r.code, 1)
    assert.equal(failureLine(r).code, 'core.invalid_envelope')
    assert.equal(await count(target), 2)
  })

  test('state shows a projection for one tenant only; an unknown projection is exit 1', async () => {
    const env = { EVENTPLANE_DATABASE_URL: source.url, EVENTPLANE_DOMAIN: '@eventplane/example-deployments' }
    const r = await runCli(['state', 'deployment_status', '--tenant', 'acme', '--json'], { env })
    assert.equal(r.code, 0, r.stderr)
    const rows = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    assert.deepEqual(rows, [{ projection: 'deployment_status', tenant: 'acme', key: 'web', state: { replicas: 2 } }])
    const unknown = await runCli(['state', 'nope', '--tenant', 'acme'], { env })
    assert.equal(unknown.code, 1)
    assert.equal(failureLine(unknown).code, 'runtime.unknown_projection')
  })

  test("a stream the target already holds other events of goes in at other versions: exit 2, the stored hashes are not the file's", async () => {
    const s = { tenant: 'acme', category: 'deployment', id: 'db' }
    const acme = EventFactory.forTenant('acme', { causedBy: 'user:alice' })
    await new PgEventStore(source.connect(ROLES.intentWriter, 1)).append(s, [acme.intent(s, 'create', { n: 1 })])
    await new PgEventStore(target.connect(ROLES.intentWriter, 1)).append(s, [acme.intent(s, 'create', { n: 2 })])
    const file = join(dir, 'db.ndjson')
    const out = await runCli(
      ['export', '--tenant', 'acme', '--stream', 'deployment/db', '--include-actor', '--output', file],
      { env: { EVENTPLANE_DATABASE_URL: source.url } },
    )
    assert.equal(out.code, 0, out.stderr)
    // The file's chain holds (its line is version 1); appended after the target's own event it becomes version 2.
    const r = await runCli(['import', file, '--tenant', 'acme'], { env: { EVENTPLANE_DATABASE_URL: target.url } })
    assert.equal(r.code, 2, r.stderr)
    assert.match(
      r.stderr,
      /^evtctl: store\.chain_broken: line 1: event [0-9a-f-]+ was stored with another hash than the file's/m,
    )
  })
})
