import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventFactory } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { createTestDatabase, eventually, type TestDatabase } from '@eventplane/store-pg/testing'
import { failureLine, killAll, runCli } from './helpers.ts'

const jsonLines = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)

describe('evtctl streams and read --category / --all', () => {
  let db: TestDatabase
  const env = () => ({ EVENTPLANE_DATABASE_URL: db.url })

  before(async () => {
    db = await createTestDatabase('ep_cli_browse')
    const store = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    const add = async (tenant: string, category: string, id: string, n: number) => {
      const f = EventFactory.forTenant(tenant, { causedBy: 'user:alice' })
      await store.append(
        { tenant, category, id },
        Array.from({ length: n }, (_, i) => f.intent({ category, id }, i === 0 ? 'created' : 'changed', { i })),
      )
    }
    await add('acme', 'deployment', 'web', 3)
    await add('acme', 'deployment', 'api', 1)
    await add('acme', 'user', 'alice', 12)
    await add('globex', 'deployment', 'web', 2)
  })
  after(async () => {
    killAll()
    await db.drop()
  })

  test('streams lists a tenant’s streams with their versions in aligned columns, paged with --after', async () => {
    const r = await runCli(['streams', '--tenant', 'acme'], { env: env() })
    assert.equal(r.code, 0, r.stderr)
    const lines = r.stdout.trimEnd().split('\n')
    assert.deepEqual(
      lines.map((l) => l.replace(/\d{4}-\d\d-\d\dT\S+Z$/, 'TIME')),
      [
        'stream               version  last type  last recorded',
        'acme/deployment/api  1        created    TIME',
        'acme/deployment/web  3        changed    TIME',
        'acme/user/alice      12       changed    TIME',
      ],
    )
    const page1 = await runCli(['streams', '--tenant', 'acme', '--limit', '2'], { env: env() })
    assert.match(page1.stdout.trimEnd().split('\n').at(-1)!, /^next page: --after deployment\/web$/)
    const page2 = await runCli(['streams', '--tenant', 'acme', '--limit', '2', '--after', 'deployment/web', '--json'], {
      env: env(),
    })
    assert.deepEqual(
      jsonLines(page2.stdout).map((l) => (l.stream ? [l.tenant_id, l.stream] : l)),
      [['acme', { category: 'user', id: 'alice' }], { next_after: 'user/alice', more: false }],
    )
    const globex = await runCli(['streams', '--tenant', 'globex', '--category', 'deployment', '--json'], {
      env: env(),
    })
    assert.deepEqual(jsonLines(globex.stdout)[0]!.version, 2)
    assert.equal(jsonLines(globex.stdout).length, 2)
  })

  test('read --category pages one category of one tenant in log order; --after continues without gap or repeat', async () => {
    await eventually(async () => {
      const r = await runCli(['read', '--category', 'deployment', '--tenant', 'acme', '--json'], { env: env() })
      return jsonLines(r.stdout).length === 5
    })
    const first = await runCli(['read', '--category', 'deployment', '--tenant', 'acme', '--limit', '3', '--json'], {
      env: env(),
    })
    assert.equal(first.code, 0, first.stderr)
    const page1 = jsonLines(first.stdout)
    const trailer = page1.pop()!
    assert.equal(trailer.more, true)
    const second = await runCli(
      ['read', '--category', 'deployment', '--tenant', 'acme', '--limit', '3', '--after', String(trailer.next_after)],
      { env: env() },
    )
    assert.equal(second.code, 0, second.stderr)
    const lines = second.stdout.trimEnd().split('\n')
    assert.equal(lines.length, 2)
    assert.match(
      lines[0]!,
      /^@\d+ {2}acme\/deployment\/api v1 {2}intent {2}created {2}\S+Z {2}[0-9a-f-]{36} {2}\{"i":0\}$/,
    )
    assert.match(lines[1]!, /^end of the log for now \(1 events\); continue later with --after \d+:\d+$/)
    const streams = page1.map((e) => {
      const stream = e.stream as { category: string; id: string }
      return `${e.tenant_id}/${stream.category}/${stream.id} v${e.stream_version}`
    })
    assert.deepEqual(streams, ['acme/deployment/web v1', 'acme/deployment/web v2', 'acme/deployment/web v3'])
  })

  test('a page exactly as long as what is left is the end of the log, not a "next page" (read, streams)', async () => {
    const args = ['read', '--category', 'deployment', '--tenant', 'acme', '--limit', '4']
    const json = await runCli([...args, '--json'], { env: env() })
    assert.equal(json.code, 0, json.stderr)
    const page = jsonLines(json.stdout)
    const trailer = page.pop()!
    assert.equal(page.length, 4)
    assert.equal(trailer.more, false)
    const human = await runCli(args, { env: env() })
    assert.match(human.stdout.trimEnd().split('\n').at(-1)!, /^end of the log for now \(4 events\); continue later/)

    // streams: acme has exactly three; a page of three is the last one. A tenant without streams says so.
    const streams = await runCli(['streams', '--tenant', 'acme', '--limit', '3', '--json'], { env: env() })
    assert.equal(streams.code, 0, streams.stderr)
    assert.deepEqual(jsonLines(streams.stdout).at(-1), { next_after: 'user/alice', more: false })
    const none = await runCli(['streams', '--tenant', 'initech'], { env: env() })
    assert.equal(none.code, 0, none.stderr)
    assert.equal(none.stdout.trimEnd().split('\n').at(-1), 'no streams in tenant initech')
  })

  test('read --all reads every tenant as the operator, with aligned columns', async () => {
    let events: Record<string, unknown>[] = []
    await eventually(async () => {
      const r = await runCli(['read', '--all', '--json', '--limit', '100'], { env: env() })
      events = jsonLines(r.stdout)
      return events.length === 19
    })
    assert.deepEqual(events.at(-1), { next_after: `${events[17]!.tx_id}:${events[17]!.global_position}`, more: false })
    assert.deepEqual([...new Set(events.slice(0, -1).map((e) => e.tenant_id))], ['acme', 'globex'])
    const human = await runCli(['read', '--all', '--limit', '18'], { env: env() })
    const lines = human.stdout.trimEnd().split('\n').slice(0, -1)
    const idColumn = lines.map((l) => l.search(/[0-9a-f]{8}-[0-9a-f]{4}-/))
    assert.equal(new Set(idColumn).size, 1, `ids line up:\n${human.stdout}`)
  })

  test('sources and paging options that do not fit are usage errors', async () => {
    for (const args of [
      ['read'],
      ['read', 'acme/deployment/web', '--all'],
      ['read', '--all', '--tenant', 'acme'],
      ['read', '--category', 'deployment', '--tenant', 'acme', '--backward'],
      ['read', 'acme/deployment/web', '--after', '1:2'],
      ['read', '--all', '--after', 'yesterday'],
      ['read', '--category', 'deployment'],
      ['streams'],
      ['streams', '--tenant', 'acme', '--after', 'no-slash'],
    ]) {
      const r = await runCli(args, { env: env() })
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`)
      assert.equal(failureLine(r).code, 'cli.bad_usage', args.join(' '))
    }
  })
})
