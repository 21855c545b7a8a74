import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { startNatsServer, type TestNatsServer } from '@eventplane/bus-nats/testing'
import { createTestDatabase, eventually, type TestDatabase } from '@eventplane/store-pg/testing'
import { type CliProcess, failureLine, killAll, runCli, startCli } from './helpers.ts'

const REPO_NODE_MODULES = fileURLToPath(new URL('../../../node_modules', import.meta.url))

/** A user's own domain, as a plain .js file outside the workspace: one intent, one controller, one projection. */
const COUNTERS_JS = `
import { Type } from '@sinclair/typebox'
import { defineDomain, defineReducerProjection } from '@eventplane/runtime'

const By = Type.Integer({ minimum: 1, maximum: 100 })

export const domain = defineDomain({
  name: 'counters',
  schemas: {
    bump: Type.Object({ by: By }, { additionalProperties: false }),
    bumped: Type.Object({ by: By }, { additionalProperties: false }),
  },
  controllers: [
    {
      name: 'counter',
      categories: ['counter'],
      async reconcile(event, ctx) {
        await ctx.emit(ctx.fact('bumped', { by: event.data.by }))
      },
    },
  ],
  projections: [
    defineReducerProjection({
      name: 'counter_total',
      version: 1,
      initial: () => ({ total: 0 }),
      apply: (state, e) => (e.type === 'bumped' ? { total: state.total + e.data.by } : state),
      key: (e) => e.stream.id,
      filter: { kinds: ['fact'], categories: ['counter'] },
    }),
  ],
})
`

describe('evtctl --domain: a domain of the user, from a .js file', () => {
  let dir: string
  let db: TestDatabase
  let nats: TestNatsServer
  let up: CliProcess
  let env: Record<string, string>

  before(async () => {
    // A project directory outside the workspace whose node_modules has the packages (as npm install would).
    dir = mkdtempSync(join(tmpdir(), 'evtctl-domain-'))
    symlinkSync(REPO_NODE_MODULES, join(dir, 'node_modules'), 'dir')
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'my-domain', private: true, type: 'module' }))
    writeFileSync(join(dir, 'domain.js'), COUNTERS_JS)
    writeFileSync(join(dir, 'not-a-domain.js'), 'export default { name: "counters", controllers: [] }\n')
    writeFileSync(
      join(dir, 'bad-schema.js'),
      "import { defineDomain } from '@eventplane/runtime'\nexport default defineDomain({ name: 'x', schemas: { bump: { type: 'object' } } })\n",
    )
    db = await createTestDatabase('ep_cli_domain')
    nats = await startNatsServer({ withAuth: false })
    env = { EVENTPLANE_DATABASE_URL: db.url, EVENTPLANE_NATS_URL: nats.url }
    up = startCli(['up', '--domain', './domain.js', '--json'], { env, cwd: dir })
    await up.waitFor((out) => out.includes('"ready":true'), 30_000)
  })
  after(async () => {
    killAll()
    await nats?.stop()
    await db?.drop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test("up runs the domain's controller and projection", () => {
    const ready = JSON.parse(up.stdout.split('\n')[0]!) as { runtime: string[] }
    assert.deepEqual(ready.runtime.sort(), ['counter', 'counter_total'])
  })

  test("the gateway refuses an intent that breaks the domain's schema, and records nothing", async () => {
    const r = await runCli(['publish', 'acme/counter/c0', 'bump', '--data', '{"by":"many"}'], { env, cwd: dir })
    assert.equal(r.code, 1, r.stderr)
    assert.equal(failureLine(r).code, 'core.schema_violation')
    const unknown = await runCli(['publish', 'acme/counter/c0', 'reset', '--data', '{}'], { env, cwd: dir })
    assert.equal(failureLine(unknown).code, 'core.unknown_schema')
    const [row] = await db.admin<{ n: number }[]>`select count(*)::int as n from eventplane.events`
    assert.equal(row!.n, 0)
  })

  test("a valid intent is reconciled and the projection's state is visible with evtctl state", async () => {
    for (const by of [2, 3]) {
      const r = await runCli(['publish', 'acme/counter/c1', 'bump', '--data', JSON.stringify({ by })], {
        env,
        cwd: dir,
      })
      assert.equal(r.code, 0, r.stderr)
    }
    // Waited for in the database (an evtctl process with a domain costs about 1 s of CPU), then shown by evtctl.
    await eventually(
      async () =>
        (
          await db.admin<{ total: number }[]>`
            select (state->>'total')::int as total from eventplane.projection_state
             where projection = 'counter_total' and tenant_id = 'acme' and key = 'c1'`
        )[0]?.total === 5,
      30_000,
      'the projection to reach 5',
    )
    const state = ['state', 'counter_total', '--tenant', 'acme', '--key', 'c1', '--json']
    const r = await runCli(state, { env: { ...env, EVENTPLANE_DOMAIN: './domain.js' }, cwd: dir })
    assert.equal(r.code, 0, r.stderr)
    assert.equal((JSON.parse(r.stdout) as { state: { total: number } }).state.total, 5)
  })

  test('a command that needs a domain says so in one line without one (exit 1)', async () => {
    for (const args of [['up'], ['replay', 'counter_total'], ['state', 'counter_total', '--tenant', 'acme']]) {
      const r = await runCli(args, { env, cwd: dir })
      assert.equal(r.code, 1, r.stderr)
      const failure = failureLine(r)
      assert.equal(failure.code, 'cli.config')
      assert.match(failure.message, /needs a domain: pass --domain <module>/)
    }
  })

  test("replay and state of a controller's name are runtime.unknown_projection (exit 1), naming the projections", async () => {
    for (const args of [
      ['replay', 'counter'],
      ['state', 'counter', '--tenant', 'acme'],
    ]) {
      const r = await runCli([...args, '--domain', './domain.js'], { env, cwd: dir })
      assert.equal(r.code, 1, r.stderr)
      const failure = failureLine(r)
      assert.equal(failure.code, 'runtime.unknown_projection')
      assert.match(failure.message, /^unknown projection "counter" in domain counters; known: counter_total$/)
    }
  })

  test('a module that is not a valid domain is one typed line (exit 1)', async () => {
    const cases: [string, string, RegExp][] = [
      ['./not-a-domain.js', 'runtime.invalid_domain', /is not a domain: export default defineDomain/],
      ['./bad-schema.js', 'runtime.invalid_domain', /domain x: /],
      ['./missing.js', 'cli.config', /domain module \S+\/missing\.js not found$/],
      ['@acme/no-such-domain', 'cli.config', /domain package @acme\/no-such-domain is not installed/],
    ]
    for (const [domain, code, message] of cases) {
      const r = await runCli(['replay', 'counter_total', '--domain', domain], { env, cwd: dir })
      assert.equal(r.code, 1, r.stderr)
      const failure = failureLine(r)
      assert.equal(failure.code, code, domain)
      assert.match(failure.message, message)
    }
  })
})
