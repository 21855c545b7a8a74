import assert from 'node:assert/strict'
import { readFile, readdir } from 'node:fs/promises'
import { test } from 'node:test'

test('packages/core imports no node:*, postgres or NATS module (the core has no I/O)', async () => {
  const dir = new URL('../packages/core/src/', import.meta.url)
  const files = (await readdir(dir)).filter((f) => f.endsWith('.ts'))
  assert.ok(files.length > 3)
  for (const file of files) {
    const text = await readFile(new URL(file, dir), 'utf8')
    assert.doesNotMatch(text, /from ['"](node:|postgres|@nats-io)/, file)
    assert.doesNotMatch(text, /\b(process|Buffer|require)\b\s*[.(]/, file)
  }
})

test('no package root re-exports with export *', async () => {
  for (const pkg of await readdir(new URL('../packages/', import.meta.url))) {
    const text = await readFile(new URL(`../packages/${pkg}/src/index.ts`, import.meta.url), 'utf8').catch(() => '')
    assert.doesNotMatch(text, /export \*/, pkg)
  }
})
