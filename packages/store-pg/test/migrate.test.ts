import assert from 'node:assert/strict'
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { MIGRATIONS_DIR, loadMigrations, migrate } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'

describe('migrations', () => {
  let db: TestDatabase
  before(async () => {
    db = await createTestDatabase('ep_migrate', { migrate: false })
  })
  after(() => db.drop())

  test('apply in order, are recorded, and a second run (even a concurrent one) applies nothing', async () => {
    const files = (await loadMigrations()).map((m) => m.name)
    const [a, b] = await Promise.all([migrate(db.admin), migrate(db.admin)])
    assert.deepEqual([...a!.applied, ...b!.applied].sort(), files)
    const again = await migrate(db.admin)
    assert.deepEqual(again, { applied: [], alreadyApplied: files })
    const recorded = await db.admin<{ name: string }[]>`select name from eventplane.schema_migrations order by version`
    assert.deepEqual(
      recorded.map((r) => r.name),
      files,
    )
  })

  test('an applied migration that changed afterwards is refused with store.migration_failed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ep-migrations-'))
    try {
      await cp(MIGRATIONS_DIR, dir, { recursive: true })
      const first = (await loadMigrations(dir))[0]!
      await writeFile(join(dir, first.name), `${first.sql}\n-- edited\n`)
      await assert.rejects(migrate(db.admin, { dir }), (e) => isEventplaneError(e, 'store.migration_failed'))
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
