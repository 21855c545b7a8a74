import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { REPO_ROOT, eventually } from './fixtures.ts'

const SCRIPT = fileURLToPath(new URL('./support/frozen-children.ts', import.meta.url))

describe('test fixtures: a frozen child cannot hang up the test runner', () => {
  const dir = mkdtempSync(join(tmpdir(), 'eventplane-pgrp-'))
  after(() => rmSync(dir, { recursive: true, force: true }))

  test('a nats-server and a service child frozen (SIGSTOP) while the runner’s process group is orphaned: the runner and the commands after it go on', {
    timeout: 120_000,
  }, async () => {
    const out = join(dir, 'out')
    const go = join(dir, 'go')
    // A shell in a session of its own (detached) starts, as a job of its own process group (set -m), the
    // runner (a node process using the fixtures) and a command after it, as `node --test a.ts; echo done`
    // would be; it exits once the runner has frozen its children. That orphans the job's group: if a
    // stopped process were in it, the kernel would send the whole group SIGHUP (then SIGCONT), killing
    // the runner and the command after it.
    const shell = spawn(
      'bash',
      [
        '-c',
        `set -m
         ( node --import tsx "$1" "$2" >> "$3" 2>&1; echo after >> "$3" ) &
         until grep -q '^frozen' "$3" 2>/dev/null; do sleep 0.05; done`,
        'shell',
        SCRIPT,
        go,
        out,
      ],
      { cwd: REPO_ROOT, detached: true, stdio: 'ignore' },
    )
    const shellExited = new Promise<number | null>((done) => shell.once('exit', (code) => done(code)))
    assert.equal(await shellExited, 0, 'the shell saw the children frozen and exited')
    assert.match(readFileSync(out, 'utf8'), /^frozen \d+$/m)
    writeFileSync(go, '')
    // Hung up, the runner and the command after it die without a word: then this times out.
    await eventually(() => readFileSync(out, 'utf8').includes('after'), 'the command after the runner to run', 60_000)
    const lines = readFileSync(out, 'utf8')
    assert.match(lines, /^survived$/m, `the runner survived its frozen children: ${lines}`)
    assert.match(lines, /^after$/m, `the command after the runner ran: ${lines}`)
  })
})
