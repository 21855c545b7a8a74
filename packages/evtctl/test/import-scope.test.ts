import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { type EventEnvelope, EventFactory } from '@eventplane/core'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { failureLine, killAll, runCli } from './helpers.ts'

describe('evtctl import is scoped to one tenant and to intents unless asked', () => {
  let db: TestDatabase
  let dir: string
  const env = () => ({ EVENTPLANE_DATABASE_URL: db.url })
  const count = async () => (await db.admin`select count(*)::int as n from eventplane.events`)[0]!.n as number
  const ndjson = async (name: string, events: EventEnvelope[]) => {
    const path = join(dir, name)
    await writeFile(path, `${events.map((e) => JSON.stringify(e)).join('\n')}\n`)
    return path
  }
  const web = { category: 'deployment', id: 'web' }
  const acme = EventFactory.forTenant('acme', { causedBy: 'user:alice' })
  const intent = acme.intent(web, 'create', { image: 'nginx' })
  const fact = EventFactory.fromEvent(intent, { causedBy: 'controller:deployments' }).fact(web, 'scheduled', {})
  const globexIntent = EventFactory.forTenant('globex', { causedBy: 'user:eve' }).intent(web, 'create', {})
  const globexFact = EventFactory.fromEvent(globexIntent, { causedBy: 'controller:deployments' }).fact(
    web,
    'scheduled',
    {},
  )

  before(async () => {
    db = await createTestDatabase('ep_cli_import_scope')
    dir = await mkdtemp(join(tmpdir(), 'ep-cli-import-'))
  })
  after(async () => {
    killAll()
    await Promise.all([db?.drop(), rm(dir, { recursive: true, force: true })])
  })

  test('a line of another tenant is refused and nothing of the file is written', async () => {
    const file = await ndjson('mixed-tenants.ndjson', [intent, globexIntent, globexFact])
    const r = await runCli(['import', file, '--tenant', 'acme', '--allow-facts'], { env: env() })
    assert.equal(r.code, 1, r.stderr)
    const failure = failureLine(r)
    assert.equal(failure.code, 'core.tenant_mismatch')
    assert.match(failure.message, /^line 2 is an event of tenant globex, not of --tenant acme$/)
    assert.equal(await count(), 0, 'the acme intent on line 1 was not written either')
  })

  test('a fact is refused without --allow-facts, with nothing written; a dry run counts and writes nothing', async () => {
    const file = await ndjson('chain.ndjson', [intent, fact])
    const refused = await runCli(['import', file, '--tenant', 'acme'], { env: env() })
    assert.equal(refused.code, 1)
    assert.match(failureLine(refused).message, /^line 2 is a fact \(scheduled\); .* only with --allow-facts$/)
    assert.equal(await count(), 0, 'the intent before the fact was not written')

    // Hand-made lines carry no hash chain: they import only with --rehash.
    const dry = await runCli(['import', file, '--tenant', 'acme', '--allow-facts', '--dry-run', '--rehash'], {
      env: env(),
    })
    assert.equal(dry.code, 0, dry.stderr)
    assert.deepEqual(dry.stdout.trimEnd().split('\n'), [
      'tenant  kind    events',
      'acme    fact    1',
      'acme    intent  1',
      'dry run: 2 events checked, nothing written',
    ])
    assert.equal(await count(), 0)

    const unchained = await runCli(['import', file, '--tenant', 'acme', '--allow-facts'], { env: env() })
    assert.equal(unchained.code, 2)
    assert.equal(failureLine(unchained).code, 'store.chain_broken')
    assert.equal(await count(), 0)

    const real = await runCli(['import', file, '--tenant', 'acme', '--allow-facts', '--rehash'], { env: env() })
    assert.match(real.stderr, /WARNING: --rehash/)
    assert.equal(real.code, 0, real.stderr)
    assert.deepEqual(real.stdout.trimEnd().split('\n'), [
      'tenant  kind    events',
      'acme    fact    1',
      'acme    intent  1',
      'imported 2, skipped 0 already stored, 0 conflicts',
    ])
    assert.equal(await count(), 2)
  })

  test("an event of a reserved category (even an intent) is the system's: refused without --allow-facts", async () => {
    const before = await count()
    const reserved = EventFactory.systemFromEvent(intent, { causedBy: 'user:alice' }).intent(
      { category: 'eventplane_reconciles', id: `deployer:${intent.event_id}` },
      'reconcile_started',
      { controller: 'deployer', attempt: 1 },
    )
    const file = await ndjson('reserved.ndjson', [reserved])
    const refused = await runCli(['import', file, '--tenant', 'acme', '--rehash'], { env: env() })
    assert.equal(refused.code, 1, refused.stderr)
    assert.equal(failureLine(refused).code, 'cli.bad_usage')
    assert.match(
      failureLine(refused).message,
      /^line 1 is in the system's category eventplane_reconciles; .*--allow-facts$/,
    )
    assert.equal(await count(), before, 'nothing was written')
  })

  test('intents alone import without --allow-facts; from stdin too', async () => {
    const other = acme.intent({ category: 'deployment', id: 'api' }, 'create', { image: 'api' })
    const r = await runCli(['import', '-', '--tenant', 'acme', '--json', '--rehash'], {
      env: env(),
      input: `${JSON.stringify(other)}\n`,
    })
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(JSON.parse(r.stdout), {
      imported: 1,
      skipped: 0,
      conflicts: [],
      counts: [{ tenant: 'acme', kind: 'intent', events: 1 }],
    })
  })

  test('--tenant is required: EVENTPLANE_TENANT alone is not enough, and import --help says so', async () => {
    const file = await ndjson('one.ndjson', [intent])
    for (const extra of [{}, { EVENTPLANE_TENANT: 'acme' }]) {
      const r = await runCli(['import', file], { env: { ...env(), ...extra } })
      assert.equal(r.code, 1)
      assert.match(failureLine(r).message, /import needs --tenant/)
    }
    // The other commands' --tenant falls back to EVENTPLANE_TENANT; import's help must not promise that.
    const help = await runCli(['import', '--help'], { env: env() })
    const tenantHelp = help.stdout.split('\n').find((l) => l.trimStart().startsWith('--tenant'))
    assert.match(tenantHelp ?? '', /required/)
    assert.doesNotMatch(tenantHelp ?? '', /default: EVENTPLANE_TENANT/)
  })
})
