import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventFactory, type RecordedEvent } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { eventCells, liveLine, logEventCells } from '../src/format.ts'
import { Output, readAllStdin, toJson } from '../src/io.ts'
import { alignRows } from '../src/table.ts'
import { failureLine, killAll, runCli } from './helpers.ts'

/** CSI (C1) that would turn the rest red, DEL, a right-to-left override, a line separator, an isolate. */
const TERMINAL_TRAP = 'ok\u009b31mred\u007f \u202eevil\u2028\u2066x\u2069'
const TERMINAL_UNSAFE = /[\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/

describe('evtctl read', () => {
  let db: TestDatabase
  const env = (extra: Record<string, string> = {}) => ({ EVENTPLANE_DATABASE_URL: db.url, ...extra })
  const ids: string[] = []

  before(async () => {
    db = await createTestDatabase('ep_cli_read')
    const store = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    const acme = EventFactory.forTenant('acme', { causedBy: 'user:alice' })
    for (let i = 1; i <= 5; i++) {
      const e = acme.intent({ category: 'deployment', id: 'web-1' }, 'scaled', { replicas: i })
      ids.push(e.event_id)
      await store.append({ tenant: 'acme', category: 'deployment', id: 'web-1' }, [e])
    }
    // A tenant's data that would drive or disguise an operator's terminal if printed as it is.
    await store.append({ tenant: 'acme', category: 'deployment', id: 'odd' }, [
      acme.intent({ category: 'deployment', id: 'odd' }, 'noted', { note: TERMINAL_TRAP }),
    ])
    const globex = EventFactory.forTenant('globex', { causedBy: 'user:bob' })
    await store.append({ tenant: 'globex', category: 'deployment', id: 'web-1' }, [
      globex.intent({ category: 'deployment', id: 'web-1' }, 'scaled', { replicas: 99 }),
    ])
  })
  after(async () => {
    killAll()
    await db.drop()
  })

  test('prints a stream oldest first, one line per event, without the actor', async () => {
    const r = await runCli(['read', 'acme/deployment/web-1'], { env: env() })
    assert.equal(r.code, 0, r.stderr)
    const lines = r.stdout.trim().split('\n')
    assert.equal(lines.length, 5)
    assert.match(lines[0]!, /^v1 {2}@\d+ {2}intent +scaled {2}\S+Z {2}[0-9a-f-]{36} {2}\{"replicas":1\}$/)
    assert.ok(lines[4]!.includes(ids[4]!))
    assert.doesNotMatch(r.stdout, /alice/)
    assert.equal(r.stderr, '')
  })

  test('--json prints one object per event with positions as strings; --show-actor adds caused_by', async () => {
    const r = await runCli(['read', 'acme/deployment/web-1', '--json', '--show-actor'], { env: env() })
    assert.equal(r.code, 0, r.stderr)
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    assert.equal(events.length, 5)
    assert.equal(typeof events[0]!.global_position, 'string')
    assert.equal(typeof events[0]!.tx_id, 'string')
    assert.equal(events[0]!.tenant_id, 'acme')
    assert.deepEqual(events[0]!.stream, { category: 'deployment', id: 'web-1' })
    assert.equal(events[0]!.caused_by, 'user:alice')
    assert.deepEqual(
      events.map((e) => e.event_id),
      ids,
    )
    const plain = await runCli(['read', 'acme/deployment/web-1', '--json'], { env: env() })
    assert.equal('caused_by' in (JSON.parse(plain.stdout.split('\n')[0]!) as object), false)
  })

  test('data that could drive a terminal (C1 controls, DEL, bidi overrides) is printed escaped, as the same JSON', async () => {
    for (const args of [[], ['--json']]) {
      const r = await runCli(['read', 'acme/deployment/odd', ...args], { env: env() })
      assert.equal(r.code, 0, r.stderr)
      assert.doesNotMatch(r.stdout, TERMINAL_UNSAFE, `raw control characters in: ${JSON.stringify(r.stdout)}`)
      const json = args.length === 0 ? r.stdout.trim().split('  ').at(-1)! : r.stdout
      const data = args.length === 0 ? JSON.parse(json) : (JSON.parse(json) as { data: unknown }).data
      assert.deepEqual(data, { note: TERMINAL_TRAP }, 'the same value once parsed')
    }
  })

  test('--backward, --from and --limit select a window', async () => {
    const r = await runCli(['read', 'acme/deployment/web-1', '--backward', '--from', '4', '--limit', '2', '--json'], {
      env: env(),
    })
    assert.equal(r.code, 0, r.stderr)
    const versions = r.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { stream_version: number }).stream_version)
    assert.deepEqual(versions, [4, 3])
    const fwd = await runCli(['read', 'acme/deployment/web-1', '--from', '5', '--json'], { env: env() })
    assert.equal(fwd.stdout.trim().split('\n').length, 1)
  })

  test('category/id takes the tenant from --tenant or EVENTPLANE_TENANT; other tenants stay invisible', async () => {
    const viaFlag = await runCli(['read', 'deployment/web-1', '--tenant', 'globex', '--json'], { env: env() })
    assert.equal(viaFlag.code, 0, viaFlag.stderr)
    assert.equal(viaFlag.stdout.trim().split('\n').length, 1)
    assert.match(viaFlag.stdout, /"replicas":99/)
    const viaEnv = await runCli(['read', 'deployment/web-1', '--json'], { env: env({ EVENTPLANE_TENANT: 'acme' }) })
    assert.equal(viaEnv.stdout.trim().split('\n').length, 5)
  })

  test('an empty or unknown stream prints nothing and succeeds', async () => {
    const r = await runCli(['read', 'acme/deployment/nope'], { env: env() })
    assert.equal(r.code, 0)
    assert.equal(r.stdout, '')
  })

  test('bad stream names are exit 1 with one line', async () => {
    for (const bad of [
      'acme/deploy.ment/x',
      'ac*me/deployment/x',
      'acme/deployment/a b',
      'acme/deployment/x/y',
      'acme/>/x',
      'acme',
    ]) {
      const r = await runCli(['read', bad], { env: env() })
      assert.equal(r.code, 1, `${bad}: ${r.stderr}`)
      assert.match(failureLine(r).code, /^(core\.invalid_name|cli\.bad_usage)$/, bad)
    }
  })

  test('a --tenant that contradicts the stream is refused', async () => {
    const r = await runCli(['read', 'acme/deployment/web-1', '--tenant', 'globex'], { env: env() })
    assert.equal(r.code, 1)
    assert.equal(failureLine(r).code, 'core.tenant_mismatch')
  })

  test('two parts without any tenant are a usage error saying what a stream is and how to read a category', async () => {
    const r = await runCli(['read', 'deployment/web-1'], { env: env() })
    assert.equal(r.code, 1)
    assert.equal(failureLine(r).code, 'cli.bad_usage')
    // tenant/category without an id: the line fits that reading too, not only "category/id without a tenant".
    const category = await runCli(['read', 'acme/account'], { env: env() })
    assert.equal(category.code, 1, category.stderr)
    const failure = failureLine(category)
    assert.equal(failure.code, 'cli.bad_usage')
    assert.match(
      failure.message,
      /^stream "acme\/account" has two parts: a stream is tenant\/category\/id, or category\/id with --tenant;/,
    )
    assert.match(failure.message, /evtctl read --category account --tenant acme$/)
    assert.doesNotMatch(failure.message, /has no tenant/)
  })

  test('bad option values are usage errors', async () => {
    for (const args of [['--limit', '-1'], ['--limit', 'ten'], ['--from', '0'], ['--bogus']]) {
      const r = await runCli(['read', 'acme/deployment/web-1', ...args], { env: env() })
      assert.equal(r.code, 1, args.join(' '))
      assert.equal(failureLine(r).code, 'cli.bad_usage')
    }
  })
})

describe('how events and rows are shown', () => {
  const e: RecordedEvent = {
    ...EventFactory.forTenant('acme', { causedBy: 'user:alice' }).intent(
      { category: 'deployment', id: 'web-1' },
      'scaled',
      { replicas: 3 },
    ),
    stream_version: 7,
    global_position: 42n,
    tx_id: 9n,
    recorded_at: '2026-12-02T00:00:00.000Z',
  }
  const hidden = { showActor: false }
  const shown = { showActor: true }

  test('a stream event, a log event and a live line: position, stream and version, and the actor only when asked', () => {
    const rest = [e.kind, e.type, e.occurred_at, e.event_id]
    assert.deepEqual(eventCells(e, hidden), ['v7', '@42', ...rest, '{"replicas":3}'])
    assert.deepEqual(logEventCells(e, hidden), ['@42', 'acme/deployment/web-1 v7', ...rest, '{"replicas":3}'])
    assert.deepEqual(logEventCells(e, shown).at(-2), 'by user:alice')
    assert.equal(
      liveLine(e, shown),
      [
        '@42',
        'intent  ',
        'acme/deployment/web-1 v7',
        'scaled',
        e.occurred_at,
        e.event_id,
        'by user:alice',
        '{"replicas":3}',
      ].join('  '),
    )
    assert.ok(!liveLine(e, hidden).includes('alice'))
    const odd = { ...e, data: { note: TERMINAL_TRAP } }
    for (const text of [eventCells(odd, hidden).at(-1)!, logEventCells(odd, hidden).at(-1)!, liveLine(odd, hidden)]) {
      assert.doesNotMatch(text, TERMINAL_UNSAFE)
      assert.ok(text.includes(String.raw`ok\u009b31mred\u007f \u202eevil\u2028\u2066x\u2069`), text)
    }
    assert.equal(toJson({ s: '\\\u009b' }), String.raw`{"s":"\\\u009b"}`, 'a backslash before one stays a backslash')
  })

  test('rows: columns aligned, no trailing spaces, nothing for no rows; JSON with positions as strings', async () => {
    assert.deepEqual(
      alignRows([
        ['a', 'bb', 'x'],
        ['ccc', 'd', 'y'],
        ['e', '', ''],
      ]),
      ['a    bb  x', 'ccc  d   y', 'e'],
    )
    const out: string[] = []
    const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: () => {} }, env: {} }
    const view = { record: (n: bigint) => ({ n }), cells: (n: bigint) => [String(n)], header: ['n'] }
    new Output(io, false).rows([], view)
    new Output(io, true).rows([], view)
    assert.deepEqual(out, [])
    new Output(io, true).rows([2n ** 63n], view)
    new Output(io, true).line('human only')
    new Output(io, false).record({ machine: 'only' })
    assert.deepEqual(out, ['{"n":"9223372036854775808"}\n'])
    assert.equal(toJson({ p: 1n }), '{"p":"1"}')
    const stdin = (...chunks: string[]) => ({
      ...io,
      stdin: (async function* () {
        yield* chunks
      })(),
    })
    assert.equal(await readAllStdin(stdin('ab', 'cd'), 4), 'abcd')
    await assert.rejects(
      readAllStdin(stdin('ab', 'cde'), 4),
      (err: Error & { code?: string }) => err.code === 'core.payload_too_large',
    )
  })
})
