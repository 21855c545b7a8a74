import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'

const exec = promisify(execFile)
const ROOT = join(import.meta.dirname, '..')

/**
 * The reporter flags of scripts/test.sh's main runner (the `--test-concurrency=5` command), as node arguments: its
 * `$groups_dir` made `groups`, a `./scripts/` reporter made absolute.
 */
async function mainRunnerReporters(groups: string): Promise<string[]> {
  const script = (await readFile(join(ROOT, 'scripts/test.sh'), 'utf8')).replace(/\\\n/g, ' ')
  const command = script.split('\n').find((l) => l.includes('--test-concurrency=5'))
  assert.ok(command, 'scripts/test.sh has a main runner with --test-concurrency=5')
  return [...command.matchAll(/--test-reporter(?:-destination)?=("[^"]*"|\S+)/g)].map((m) =>
    m[0]
      .replace(m[1]!, m[1]!.replace(/^"|"$/g, ''))
      .replace('$groups_dir', groups)
      .replace('=./scripts/', `=${join(ROOT, 'scripts')}/`),
  )
}

// Lines of the two test files, kept off the start of this file's lines: the check counts what starts a line.
/** Two top-level tests, both reported. */
const WHOLE = [
  "import { describe, test } from 'node:test'",
  "describe('one', () => { test('a', () => {}) })",
  "test('two', () => {})",
]
/** Declares two top-level describes at the start of a line, registers one: the second sits in a function never called. */
const SHORT = [
  "import { describe, test } from 'node:test'",
  "describe('one', () => { test('a', () => {}) })",
  'function never() {',
  "describe('two', () => { test('b', () => {}) })",
  '}',
]

/**
 * scripts/test.sh runs its files with node's tap reporter and scripts/test-times.mjs, then test-counts-check.mjs on
 * what the reporter wrote. Here the same flags (read from test.sh) on two small files of plain JavaScript: no warning
 * from the runner, each file's seconds and top-level count recorded, and the check fails on a file that reported
 * fewer top-level tests than it declares.
 */
describe("the suite's main runner and its reporters, as scripts/test.sh runs them", () => {
  let dir: string
  let run: { stdout: string; stderr: string; code: number }
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ep-suite-runner-'))
    const groups = join(dir, 'groups')
    await mkdir(groups)
    await mkdir(join(dir, 'files'))
    await writeFile(join(dir, 'files/whole.test.mjs'), `${WHOLE.join('\n')}\n`)
    await writeFile(join(dir, 'files/short.test.mjs'), `${SHORT.join('\n')}\n`)
    // What scripts/test-plan.ts writes: a wrapper per process, importing its files (the check reads the imports).
    await writeFile(join(groups, '0-whole.test.ts'), "import '../files/whole.test.mjs'\n")
    await writeFile(join(groups, '1-short.test.ts'), "import '../files/short.test.mjs'\n")
    const args = ['--test', ...(await mainRunnerReporters(groups)), 'files/whole.test.mjs', 'files/short.test.mjs']
    // A runner of its own: without NODE_TEST_CONTEXT, which this file's runner sets and a nested run refuses under.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env
    run = await exec(process.execPath, args, { cwd: dir, env }).then(
      ({ stdout, stderr }) => ({ stdout, stderr, code: 0 }),
      (e: { stdout: string; stderr: string; code: number }) => e,
    )
  })
  after(() => rm(dir, { recursive: true, force: true }))

  test('runs without a warning: no MaxListenersExceededWarning from one reporter too many', () => {
    assert.equal(run.code, 0, run.stderr)
    assert.doesNotMatch(run.stderr, /Warning/)
    assert.match(run.stdout, /^# pass 3$/m, 'the tap reporter writes to stdout')
  })

  test("records each file's seconds and top-level count, and the check fails naming the file that reported fewer", async () => {
    const times = await readFile(join(dir, 'groups/times.txt'), 'utf8')
    assert.match(times, /^\s*\d+\.\d\s+2\s+files\/whole\.test\.mjs$/m)
    assert.match(times, /^\s*\d+\.\d\s+1\s+files\/short\.test\.mjs$/m)
    const check = await exec(process.execPath, [join(ROOT, 'scripts/test-counts-check.mjs'), 'groups'], {
      cwd: dir,
    }).then(
      ({ stdout }) => ({ stdout, code: 0 }),
      (e: { stdout: string; code: number }) => e,
    )
    assert.equal(check.code, 1, check.stdout)
    assert.equal(check.stdout, 'test: files/short.test.mjs reported 1 of the 2 top-level tests it declares\n')
  })
})
