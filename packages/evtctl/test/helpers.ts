import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { dieWithParent } from '@eventplane/bus-nats/testing'

/**
 * The launcher under test: bin/evtctl.js, run exactly as `pnpm exec evtctl` would, or, in the whole suite, the
 * bundle of the same sources scripts/test.sh builds (EVTCTL_TEST_BIN; see scripts/test-cli-bundle.ts).
 */
export const BIN = fileURLToPath(new URL('../bin/evtctl.js', import.meta.url))
/** What the tests run: BIN, or in the whole suite the bundle. A test that runs evtctl itself (in a shell, on a terminal) runs this. */
export const LAUNCHER = process.env.EVTCTL_TEST_BIN || BIN
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface RunOptions {
  /** EVENTPLANE_* settings; the parent's EVENTPLANE_* are never inherited. */
  env?: Record<string, string | undefined>
  input?: string
  cwd?: string
  /** Kill (SIGKILL) and fail after this many ms. Default 30 s. */
  timeoutMs?: number
}

const children = new Set<ChildProcess>()

/** The parent env without any EVENTPLANE_* (so a developer's settings cannot leak into a test). */
function baseEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EVENTPLANE_')))
}

/** A running evtctl subprocess whose output is buffered from the start. */
export interface CliProcess {
  child: ChildProcess
  readonly stdout: string
  readonly stderr: string
  /** Resolves once `predicate(output)` holds for stdout (or stderr); rejects after `timeoutMs` or if the process exits first. */
  waitFor(predicate: (output: string) => boolean, timeoutMs?: number, stream?: 'stdout' | 'stderr'): Promise<string>
  /** Resolves when the process exits; SIGKILLs it and rejects after `timeoutMs`. */
  done(timeoutMs?: number): Promise<CliResult>
}

/** Starts evtctl as a subprocess; tracked so `killAll()` can reap it. */
export function startCli(args: readonly string[], options: RunOptions = {}): CliProcess {
  const env = { ...baseEnv(), ...options.env }
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k]
  // Killed by the kernel when the test process dies, even by SIGKILL or past the runner's timeout (dieWithParent).
  const child = spawn(...dieWithParent(process.execPath, [LAUNCHER, ...args]), {
    cwd: options.cwd ?? ROOT,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  children.add(child)
  let stdout = ''
  let stderr = ''
  const listeners = new Set<() => void>()
  let isClosed = false
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    stdout += s
    for (const l of listeners) l()
  })
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    stderr += s
    for (const l of listeners) l()
  })
  const closed = new Promise<CliResult>((resolve) =>
    child.once('close', (code, signal) => {
      children.delete(child)
      isClosed = true
      for (const l of listeners) l()
      resolve({ code, signal, stdout, stderr })
    }),
  )
  if (options.input !== undefined) child.stdin!.end(options.input)
  else child.stdin!.end()
  return {
    child,
    get stdout() {
      return stdout
    },
    get stderr() {
      return stderr
    },
    waitFor(predicate, timeoutMs = 20_000, stream = 'stdout') {
      const output = (): string => (stream === 'stdout' ? stdout : stderr)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => finish(new Error(`timed out waiting for output; stdout=${stdout} stderr=${stderr}`)),
          timeoutMs,
        )
        const check = (): void => {
          if (predicate(output())) finish()
          else if (isClosed) finish(new Error(`evtctl exited first; stdout=${stdout} stderr=${stderr}`))
        }
        const finish = (err?: Error): void => {
          clearTimeout(timer)
          listeners.delete(check)
          if (err) reject(err)
          else resolve(output())
        }
        listeners.add(check)
        check()
      })
    },
    done(timeoutMs = options.timeoutMs ?? 30_000) {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL')
          reject(new Error(`evtctl did not exit within ${timeoutMs} ms; stdout=${stdout} stderr=${stderr}`))
        }, timeoutMs)
      })
      return Promise.race([closed, timeout]).finally(() => clearTimeout(timer))
    },
  }
}

/** Runs evtctl to completion. */
export function runCli(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  return startCli(args, options).done()
}

/**
 * evtctl run to completion inside this process (src/program.ts `run`, the sources), with the settings runCli
 * would give it: for a test's polls (`eventually`), which only decide when to go on, and for steps that only set
 * the scene (the events a `tail` under test is to see). An evtctl process costs about 0.4 s of CPU (more with a
 * domain) and a poll may take a dozen; what a test asserts comes from runCli, the real process, once the poll has
 * passed.
 */
export async function pollCli(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  const { run } = await import('../src/program.ts')
  const env = { ...baseEnv(), ...options.env }
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k]
  let stdout = ''
  let stderr = ''
  const code = await run(args, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env,
    cwd: options.cwd ?? ROOT,
  })
  return { code, signal: null, stdout, stderr }
}

/** SIGKILLs every evtctl child still running (call in `after`). */
export function killAll(): void {
  for (const child of children) child.kill('SIGKILL')
  children.clear()
}

/** Asserts the failure contract: exactly one stderr line `evtctl: <code>: …`, nothing on stdout. */
export function failureLine(result: CliResult): { code: string; message: string } {
  const lines = result.stderr.split('\n').filter((l) => l !== '')
  if (lines.length !== 1) throw new Error(`expected one stderr line, got ${lines.length}: ${result.stderr}`)
  const m = /^evtctl: ([a-z_]+\.[a-z_]+): (.+)$/.exec(lines[0]!)
  if (!m) throw new Error(`stderr line does not look like "evtctl: <code>: <message>": ${lines[0]}`)
  if (result.stdout !== '') throw new Error(`a failure printed to stdout: ${result.stdout}`)
  return { code: m[1]!, message: m[2]! }
}

/** A URL on a loopback port where nothing listens (port 1 is never a PostgreSQL or NATS server). */
export const UNREACHABLE_PG = 'postgres://postgres@127.0.0.1:1/nothing'
export const UNREACHABLE_NATS = 'nats://127.0.0.1:1'
