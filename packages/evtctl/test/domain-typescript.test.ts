/**
 * A domain written in TypeScript, given to the installed evtctl (plain node on its build; Node 20 loads no .ts):
 * one typed line saying to compile it, not Node's `Unknown file extension ".ts"`. The workspace's launchers register
 * tsx for a .ts domain, so the failure is taken from a plain node process and handed to the mapper loadDomain uses.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { after, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { domainLoadFailure } from '../src/domain.ts'

describe('a TypeScript domain on a Node without a TypeScript loader', () => {
  const dir = mkdtempSync(join(tmpdir(), 'evtctl-domain-ts-'))
  after(() => rmSync(dir, { recursive: true, force: true }))

  // What plain node (no tsx, no --import) throws when it imports a .ts file, as the installed evtctl does.
  const file = join(dir, 'domain.ts')
  writeFileSync(file, 'export const domain: unknown = undefined\n')
  const probe = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import(${JSON.stringify(pathToFileURL(file).href)}).then(() => console.log('loaded'), (e) => console.log(e.code))`,
    ],
    { encoding: 'utf8', env: { PATH: process.env.PATH } },
  )
  const code = probe.stdout.trim()

  test('the failure names the file and says to compile it, in one line (runtime.invalid_domain)', {
    skip: code === 'loaded' && 'this Node loads TypeScript itself',
  }, () => {
    assert.equal(code, 'ERR_UNKNOWN_FILE_EXTENSION', probe.stderr)
    const e = Object.assign(new TypeError(`Unknown file extension ".ts" for ${file}`), { code })
    const failure = domainLoadFailure('./domain.ts', e)
    assert.ok(isEventplaneError(failure, 'runtime.invalid_domain'))
    assert.equal(
      failure.message,
      `domain module ./domain.ts is TypeScript, which this Node (${process.version}) does not load: compile it (npx tsc) and pass the .js file`,
    )
    assert.equal(failure.cause, e)
  })

  test('another failure while loading keeps its first line', () => {
    const e = new SyntaxError('Unexpected token\n  at line 2')
    assert.equal(
      domainLoadFailure('./domain.js', e).message,
      'domain module ./domain.js failed to load: Unexpected token',
    )
    const ts = Object.assign(new Error('boom'), { code: 'ERR_SOMETHING_ELSE' })
    assert.equal(domainLoadFailure('./domain.ts', ts).message, 'domain module ./domain.ts failed to load: boom')
  })
})
