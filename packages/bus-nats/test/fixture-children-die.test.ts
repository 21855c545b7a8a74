import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { REPO_ROOT, eventually } from './fixtures.ts'

const HUNG_FILE = fileURLToPath(new URL('./support/hung-file.ts', import.meta.url))
/** The hung file's bound when node's runner runs it: long enough for it to start its children on a loaded machine. */
const RUNNER_TIMEOUT_MS = 20_000

/** A process as /proc shows it: its state letter and start time (so a reused pid is not taken for it). */
function procStat(pid: number): { state: string; start: string } | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8')
      .replace(/^.*\) /s, '')
      .split(' ')
    return { state: fields[0]!, start: fields[19]! }
  } catch {
    return undefined
  }
}

/** Gone: no such process, a zombie (dead, its parent not reaping), or another process with its pid. */
function gone(pid: number, start: string): boolean {
  const now = procStat(pid)
  return now === undefined || now.state === 'Z' || now.start !== start
}

function withoutTestContext(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { NODE_TEST_CONTEXT: _, ...rest } = env
  return rest
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((done) => child.once('exit', () => done()))
}

describe('test fixtures: a test file that dies takes its children with it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'eventplane-hung-'))
  after(() => rmSync(dir, { recursive: true, force: true }))
  const leftovers: number[] = []
  after(() => {
    for (const pid of leftovers) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // gone already
      }
    }
  })

  /** Runs `args` (a hung file in the end) in a group of its own, returns its process and its children's pids. */
  async function runHung(args: string[], name: string): Promise<{ file: ChildProcess; pids: number[] }> {
    const pidsFile = join(dir, name)
    const file = spawn(process.execPath, args, {
      cwd: REPO_ROOT,
      // Without NODE_TEST_CONTEXT (set in this file's own process), else `node --test` would not run the file.
      env: { ...withoutTestContext(process.env), HUNG_FILE_PIDS: pidsFile },
      stdio: 'ignore',
      detached: true,
    })
    await eventually(() => existsSync(pidsFile) && readFileSync(pidsFile, 'utf8').endsWith('\n'), 'the children up')
    const pids = readFileSync(pidsFile, 'utf8').trim().split(' ').map(Number)
    leftovers.push(...pids)
    return { file, pids }
  }

  async function assertGone(pids: number[], starts: string[], how: string): Promise<void> {
    await eventually(
      () => pids.every((pid, i) => gone(pid, starts[i]!)),
      `the nats-server and the service child gone after ${how}`,
      10_000,
    )
  }

  test('killed by node’s runner past its --test-timeout (SIGTERM), the file’s nats-server and service child die', {
    timeout: 120_000,
  }, async () => {
    const runner = ['--import', 'tsx', '--test', `--test-timeout=${RUNNER_TIMEOUT_MS}`, HUNG_FILE]
    const { file, pids } = await runHung(runner, 'runner')
    const starts = pids.map((pid) => procStat(pid)!.start)
    await exited(file)
    await assertGone(pids, starts, 'the runner killed the file')
  })

  test('SIGKILLed, so that no exit hook of its runs, the file’s nats-server and service child die', {
    timeout: 60_000,
  }, async () => {
    const { file, pids } = await runHung(['--import', 'tsx', HUNG_FILE], 'sigkill')
    const starts = pids.map((pid) => procStat(pid)!.start)
    file.kill('SIGKILL')
    await exited(file)
    await assertGone(pids, starts, 'SIGKILL of the file')
  })
})
