import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { bulkLoadEvents, createTestDatabase, eventually, type TestDatabase } from '@eventplane/store-pg/testing'
import type { TransactionSql } from '@eventplane/store-pg'
import { guardUnhandledRejections } from '../src/process-guards.ts'
import { failureLine, killAll, runCli, startCli } from './helpers.ts'

/** A domain module with a bug: a promise rejected with nobody to catch it, then a load that never ends. */
const LEAKING_DOMAIN_JS = `
Promise.reject(new Error('a bug in the domain module'))
setInterval(() => {}, 1000)
await new Promise(() => {})
export default {}
`
/** A domain module with a bug: an exception thrown from a timer, where nobody can catch it, then a load that never ends. */
const THROWING_DOMAIN_JS = `
setTimeout(() => { throw new Error('a bug thrown from a timer\\nits second line') }, 10)
setInterval(() => {}, 1000)
await new Promise(() => {})
export default {}
`

describe('evtctl ends even when what it runs does not', () => {
  let db: TestDatabase
  let dir: string

  before(async () => {
    db = await createTestDatabase('ep_cli_guards')
    await bulkLoadEvents(db.admin, 1, 200, 4)
    dir = mkdtempSync(join(tmpdir(), 'evtctl-guards-'))
    // ES modules by declaration, as a user's project declares them: by its syntax alone plain node (the bundle) loads
    // a .js module as ESM, but run alone this file runs bin/evtctl.js, whose tsx loader then fails to
    // ("Cannot require() ES Module … in a cycle"), before the module could leak anything.
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ private: true, type: 'module' }))
    writeFileSync(join(dir, 'leaking-domain.js'), LEAKING_DOMAIN_JS)
    writeFileSync(join(dir, 'throwing-domain.mjs'), THROWING_DOMAIN_JS)
  })
  after(async () => {
    killAll()
    rmSync(dir, { recursive: true, force: true })
    await db.drop()
  })

  test('a replay stuck on a lock after Ctrl-C ends 10 s later: exit 130, "did not stop within 10 s"', async () => {
    const env = { EVENTPLANE_DATABASE_URL: db.url, EVENTPLANE_DOMAIN: '@eventplane/example-deployments' }
    let release!: () => void
    const released = new Promise<void>((r) => {
      release = r
    })
    let locked!: () => void
    const holding = new Promise<void>((r) => {
      locked = r
    })
    // The log held by the test: the rebuild's read waits on the lock and cannot see its signal.
    const tx = db.admin
      .begin(async (t: TransactionSql) => {
        await t`lock table eventplane.events in access exclusive mode`
        locked()
        await released
      })
      .catch(() => {})
    await holding
    try {
      const replay = startCli(['replay', 'audit', '--restart'], { env })
      await eventually(
        async () =>
          (
            await db.admin<{ n: number }[]>`
              select count(*)::int as n from pg_stat_activity
               where datname = ${db.name} and usename = 'eventplane_projector' and wait_event_type = 'Lock'`
          )[0]!.n > 0,
        60_000,
        'the replay to wait on the held lock',
      )
      const sent = Date.now()
      replay.child.kill('SIGINT')
      const r = await replay.done(30_000)
      const took = Date.now() - sent
      assert.equal(r.code, 130, r.stderr)
      assert.ok(took >= 10_000, `ended ${took} ms after SIGINT, before its grace`)
      assert.match(
        r.stderr.trimEnd().split('\n').at(-1)!,
        /^evtctl: cli\.interrupted: interrupted, and did not stop within 10 s$/,
      )
    } finally {
      release()
      await tx
    }
  })

  for (const [what, domain, message] of [
    ['an unhandled rejection', 'leaking-domain.js', 'unhandled rejection: a bug in the domain module'],
    ['any other uncaught exception', 'throwing-domain.mjs', 'uncaught exception: a bug thrown from a timer'],
  ]) {
    test(`${what} (here from a domain module) ends the command: exit 70, one line`, async () => {
      const r = await runCli(['replay', 'audit', '--domain', `./${domain}`], {
        env: { EVENTPLANE_DATABASE_URL: db.url },
        cwd: dir,
        timeoutMs: 20_000,
      })
      assert.equal(r.code, 70, r.stderr)
      assert.deepEqual(failureLine(r), { code: 'cli.internal', message })
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
    })
  }
})

describe('the unhandled-rejection guard passes nothing over', () => {
  test('a driver connection error rejected unhandled ends the command too: exit 70, one line (the patched driver rejects none)', async () => {
    // The guard once passed over a store.unavailable-class rejection as postgres.js's dropped array-types query
    // (porsager/postgres#1192); the bundled driver is patched to handle that query (store-pg pg-terminated-reconnect).
    const before = new Set(process.listeners('unhandledRejection'))
    const lines: string[] = []
    const exits: number[] = []
    guardUnhandledRejections({ write: (s: string) => void lines.push(s) }, (code) => void exits.push(code))
    const installed = process.listeners('unhandledRejection').filter((l) => !before.has(l))
    try {
      assert.equal(installed.length, 1)
      const closed = Object.assign(new Error('write CONNECTION_CLOSED 127.0.0.1:5432'), { code: 'CONNECTION_CLOSED' })
      // Called directly, not emitted: node:test's own listener would fail this test.
      installed[0]!(closed, Promise.resolve())
      await eventually(() => lines.length > 0, 10_000, 'the guard to write its line')
      assert.deepEqual(lines, ['evtctl: cli.internal: unhandled rejection: write CONNECTION_CLOSED 127.0.0.1:5432\n'])
      assert.deepEqual(exits, [70])
    } finally {
      for (const l of installed) process.off('unhandledRejection', l)
    }
  })
})
