import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { after, before, describe, test } from 'node:test'
import { connectPg } from '@eventplane/store-pg'
import {
  TEMPLATE_ENV,
  closePool,
  type TestDatabase,
  createTemplateDatabase,
  createTestDatabase,
  dropTemplateDatabase,
} from '@eventplane/store-pg/testing'

const run = promisify(execFile)

/**
 * `pg_dump --create` of a whole database (schema, data, the ACL and settings of the database itself), its own
 * name and pg_dump's per-run `\restrict` key taken out, and the migrations' applied_at (a clock reading) blanked.
 */
async function dump(db: TestDatabase): Promise<string> {
  const { stdout } = await run('pg_dump', ['--create', '--no-comments', '--dbname', db.url], {
    maxBuffer: 64 * 1024 * 1024,
  })
  return stdout
    .replaceAll(db.name, 'DB')
    .split('\n')
    .filter((l) => !/^\\(un)?restrict /.test(l))
    .map((l) => l.replace(/\t\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[.\d]*\+00$/, '\tAPPLIED_AT'))
    .join('\n')
}

describe('the suite template database', () => {
  const saved = process.env[TEMPLATE_ENV]
  let template: string
  let migrated: TestDatabase
  let copied: TestDatabase
  before(async () => {
    delete process.env[TEMPLATE_ENV]
    migrated = await createTestDatabase('ep_tpl_migrated')
    template = await createTemplateDatabase('ep_tpl_test')
    process.env[TEMPLATE_ENV] = template
    copied = await createTestDatabase('ep_tpl_copy')
  })
  after(async () => {
    if (saved === undefined) delete process.env[TEMPLATE_ENV]
    else process.env[TEMPLATE_ENV] = saved
    await Promise.allSettled([migrated?.drop(), copied?.drop()])
    if (template) await dropTemplateDatabase(template)
  })

  test('a copy of the template is what the migrations make: the same dump, privileges on the database included', async () => {
    const [a, b] = await Promise.all([dump(migrated), dump(copied)])
    assert.match(a, /GRANT CREATE ON DATABASE DB TO eventplane_owner/)
    assert.match(a, /APPLIED_AT/)
    assert.equal(b, a)
  })

  test('copies of one template can be made at once; the template takes no connections and is dropped at the end', async () => {
    const copies = await Promise.all([1, 2, 3].map(() => createTestDatabase('ep_tpl_parallel')))
    await Promise.all(copies.map((c) => c.drop()))
    const url = new URL(migrated.url)
    url.pathname = `/${template}`
    const direct = connectPg(url.toString(), { max: 1 })
    await assert.rejects(direct`select 1`, /not currently accepting connections/)
    await closePool(direct)
    await dropTemplateDatabase(template)
    const [row] = await migrated.admin<
      { n: number }[]
    >`select count(*)::int as n from pg_database where datname = ${template}`
    assert.equal(row!.n, 0)
    template = ''
  })
})
