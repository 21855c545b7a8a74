/**
 * store-pg is the only package that speaks SQL to `eventplane.*` (issue 12):
 * every other package and the example domain call its typed functions. Reads
 * the sources (tests keep their own SQL: they check the database independently).
 */
import assert from 'node:assert/strict'
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
/** A statement naming a table, view or function of the schema: `from eventplane.events`, `eventplane.append_intents(`. */
const SQL_ON_SCHEMA =
  /\b(from|into|update|join|table|truncate|execute|call)\s+eventplane\.[a-z_]+|\beventplane\.[a-z_]+\s*\(/i

async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(join(ROOT, dir), { withFileTypes: true }).catch(() => [])
  const out: string[] = []
  for (const entry of entries) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...(await sources(path)))
    else if (/\.[cm]?[jt]s$/.test(entry.name)) out.push(path)
  }
  return out
}

function sqlLines(file: string, text: string): string[] {
  return text
    .split('\n')
    .flatMap((line, i) =>
      SQL_ON_SCHEMA.test(line) && !/^\s*(\*|\/\/)/.test(line) ? [`${file}:${i + 1}: ${line.trim()}`] : [],
    )
}

test('no package but store-pg, and no example, contains SQL on eventplane.*', async () => {
  const dirs = [
    ...(await readdir(join(ROOT, 'packages'))).filter((p) => p !== 'store-pg').map((p) => join('packages', p, 'src')),
    ...(await readdir(join(ROOT, 'examples'))).map((e) => join('examples', e, 'src')),
  ]
  const found: string[] = []
  for (const dir of dirs)
    for (const file of await sources(dir)) found.push(...sqlLines(file, await readFile(join(ROOT, file), 'utf8')))
  assert.deepEqual(found, [])
})

test('the check catches what it is for', () => {
  assert.equal(sqlLines('x.ts', 'await sql`select count(*) from eventplane.events`').length, 1)
  assert.equal(sqlLines('x.ts', 'await sql`select * from eventplane.append_intents($1)`').length, 1)
  assert.equal(sqlLines('x.ts', ' * rows of `eventplane.projection_state` (a comment)').length, 0)
  assert.equal(sqlLines('x.ts', "const subject = 'eventplane.intent.acme.deployment.web'").length, 0)
})
