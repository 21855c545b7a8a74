import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { describe, test } from 'node:test'
import { PgEventStore, ROLES, loadMigrations, verifyLog } from '@eventplane/store-pg'
import { type TestDatabase, useTestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

const run = promisify(execFile)

/** `pg_dump` of the database (schema and data) without pg_dump's per-run `\restrict` key. */
async function dump(db: TestDatabase): Promise<string> {
  const { stdout } = await run('pg_dump', ['--no-comments', '--dbname', db.url], { maxBuffer: 64 * 1024 * 1024 })
  return stdout
    .split('\n')
    .filter((l) => !/^\\(un)?restrict /.test(l))
    .join('\n')
}

// Every migration says "safe to re-apply" (by hand, `psql -f`, or a runner
// that lost its record): applied again over a migrated database holding
// events, the files leave schema, grants and rows exactly as they were.

describe('migrations applied a second time', () => {
  const db = useTestDatabase('ep_reapply')

  test('every file applied again over a migrated log with events changes nothing, and the log still works', async () => {
    const store = new PgEventStore(db.connect(ROLES.operator, 2))
    const s = stream('acme', 'reapply')
    const f = factoryFor('acme')
    await store.append(s, [f.intent(s, 'created', { a: 1 }), f.fact(s, 'scaled', { b: 2 })])
    const before = await dump(db)
    for (const m of await loadMigrations()) {
      await db.admin
        .begin((tx) => tx.unsafe(m.sql))
        .catch((e: Error) => {
          throw new Error(`${m.name} failed when applied again: ${e.message}`)
        })
    }
    assert.equal(await dump(db), before)
    await store.append(s, [f.intent(s, 'scaled', { c: 3 })], { expectedVersion: 2 })
    const verified = await verifyLog(db.connect(ROLES.operator, 1), { tenant: 'acme' })
    assert.deepEqual([verified.intact, verified.events], [true, 3])
    await assert.rejects(db.admin`delete from eventplane.events`, (e: { code?: string }) => e.code === 'EPAPO')
  })
})
