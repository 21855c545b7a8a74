/** Process plumbing of the test nats-server: the binary, a free port, readiness, last-resort cleanup. */
import type { ChildProcess } from 'node:child_process'
import { rmSync, accessSync, constants } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { delimiter, join } from 'node:path'
import { Unavailable } from '@eventplane/core'

export const INSTALL_HINT =
  'nats-server binary not found; install it with: apt-get install nats-server (or set EVENTPLANE_NATS_SERVER_BIN)'
/** Every child still running (nats-servers, service processes), SIGKILLed if the test process exits first. */
export const live = new Set<ChildProcess>()
/** Temp dirs to remove if the test process exits first. */
export const tempDirs = new Set<string>()
let exitHookInstalled = false

/** Last-resort cleanup: a test process that dies still takes its servers with it. */
export function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  const reap = (): void => {
    for (const child of live) child.kill('SIGKILL')
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
  }
  process.on('exit', reap)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      reap()
      process.kill(process.pid, signal)
    })
  }
}

/**
 * Spawn options for a child a test may freeze (SIGSTOP): its own session and process group
 * (`detached`). A stopped process left in the test runner's group makes that group "have stopped
 * jobs": once the group is orphaned (the shell that started the runner exits, or runs it in the
 * background and returns), the kernel sends SIGHUP then SIGCONT to the *whole* group, which kills
 * the runner, its shell and every command after it. In a group of its own, a frozen child can only
 * ever stop itself. Register it with {@link reapOnExit}: a terminal's Ctrl-C no longer reaches it.
 */
export const OWN_PROCESS_GROUP = { detached: true } as const

/** SIGKILLs `child` if the test process exits (or gets SIGINT/SIGTERM) while it runs. */
export function reapOnExit(child: ChildProcess): void {
  installExitHook()
  live.add(child)
  child.once('exit', () => live.delete(child))
}

/** `EVENTPLANE_NATS_SERVER_BIN`, else `nats-server` on PATH or in the sbin dirs Debian uses. */
export function findNatsServerBinary(env: NodeJS.ProcessEnv = process.env): string {
  if (env.EVENTPLANE_NATS_SERVER_BIN) return env.EVENTPLANE_NATS_SERVER_BIN
  const found = findExecutable('nats-server', env)
  if (found === undefined) throw new Unavailable('bus.unavailable', INSTALL_HINT)
  return found
}

/** `name` on PATH or in the sbin dirs Debian uses; undefined when it is nowhere. */
function findExecutable(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dirs = [...(env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/local/bin', '/usr/bin']
  for (const dir of dirs.filter((d) => d !== '')) {
    const candidate = join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // next directory
    }
  }
  return undefined
}

let setpriv: string | null | undefined

/**
 * `command` and `args` so that the child is SIGKILLed by the kernel when the test process dies, however it dies.
 * The exit hook ({@link reapOnExit}) runs on exit, SIGINT and SIGTERM (what node's runner sends a file past its
 * timeout), but not when the test process is SIGKILLed (the OOM killer, `kill -9`, a runner or CI job that
 * escalates): then a child in a process group of its own ({@link OWN_PROCESS_GROUP}) is reached by no signal at
 * all and runs on, a nats-server for good. util-linux `setpriv --pdeathsig KILL` sets the parent-death signal
 * (prctl PR_SET_PDEATHSIG, which node cannot call) and execs the command, so the child keeps its pid (tests
 * freeze it by pid) and no wrapper process stays between. Without setpriv (not Linux) the command runs as is.
 */
export function dieWithParent(command: string, args: readonly string[]): [string, string[]] {
  if (setpriv === undefined) setpriv = process.platform === 'linux' ? (findExecutable('setpriv') ?? null) : null
  return setpriv === null ? [command, [...args]] : [setpriv, ['--pdeathsig', 'KILL', '--', command, ...args]]
}

/** A loopback port that was free a moment ago (the server may still lose a race; `start` retries). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() =>
        typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port')),
      )
    })
  })
}

/**
 * True once *our* server greets with INFO (it listens only after JetStream has
 * recovered). The name check matters: if another process won the race for the
 * port, its greeting must not pass for ours.
 */
export async function greets(port: number, serverName: string): Promise<boolean> {
  return new Promise((done) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    const finish = (ok: boolean): void => {
      socket.destroy()
      done(ok)
    }
    socket.setTimeout(1000, () => finish(false))
    socket.once('error', () => finish(false))
    socket.once('data', (chunk) => {
      const line = chunk.toString('latin1')
      finish(line.startsWith('INFO') && line.includes(`"server_name":${JSON.stringify(serverName)}`))
    })
  })
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((done) => child.once('exit', () => done()))
}
