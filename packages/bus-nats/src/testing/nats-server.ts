import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import {
  accessSync,
  closeSync,
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Unavailable } from '@eventplane/core'
import { type ConnectionOptions, type NatsConnection, connect as natsConnect } from '@nats-io/transport-node'
import { SERVICE_USERS, generateNatsConfig } from '../../../../infra/nats/generate-config.ts'
import { tenantInboxPrefix } from '../subjects.ts'

export interface StartNatsServerOptions {
  /** Tenants that get a user (default none). */
  tenants?: string[]
  /** Consumer names per tenant (default `<tenant>_tail`, `_proj`, `_ctl`). */
  consumers?: Record<string, string[]>
  /** Generate the tiered users (default true); false runs an open server. */
  withAuth?: boolean
  /** Milliseconds to wait for the server to accept connections (default 10 s). */
  startTimeoutMs?: number
}

export interface NatsCredentials {
  user: string
  pass: string
}

export interface TestNatsServer {
  url: string
  port: number
  storeDir: string
  /** Random per run; keyed by user (`operator`, `relay`, `gateway`, `controller`, each tenant). */
  credentials: Record<string, NatsCredentials>
  /**
   * A connection as `user` (tenants get their `_INBOX_<tenant>` inbox prefix by
   * default); closed by `stop()`. Without auth the user is ignored.
   */
  connect(user?: string, extraOpts?: Partial<ConnectionOptions>): Promise<NatsConnection>
  /** SIGTERM, SIGKILL after a grace period; closes connections and removes the temp dir. Idempotent. */
  stop(): Promise<void>
  /** SIGKILL, keeping the store dir and leaving clients to see the crash: for recovery tests with `restart()`. */
  kill(): Promise<void>
  /** Stops the server (SIGTERM) if running and starts it again on the same port and store dir; clients reconnect. */
  restart(): Promise<void>
}

const INSTALL_HINT =
  'nats-server binary not found; install it with: apt-get install nats-server (or set EVENTPLANE_NATS_SERVER_BIN)'
const live = new Set<ChildProcess>()
const tempDirs = new Set<string>()
let exitHookInstalled = false

/** Last-resort cleanup: a test process that dies still takes its servers with it. */
function installExitHook(): void {
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

/** `EVENTPLANE_NATS_SERVER_BIN`, else `nats-server` on PATH or in the sbin dirs Debian uses. */
export function findNatsServerBinary(env: NodeJS.ProcessEnv = process.env): string {
  if (env.EVENTPLANE_NATS_SERVER_BIN) return env.EVENTPLANE_NATS_SERVER_BIN
  const dirs = [...(env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/local/bin']
  for (const dir of dirs.filter((d) => d !== '')) {
    const candidate = join(dir, 'nats-server')
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // next directory
    }
  }
  throw new Unavailable('bus.unavailable', INSTALL_HINT)
}

/** A loopback port that was free a moment ago (the server may still lose a race; `start` retries). */
async function freePort(): Promise<number> {
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
async function greets(port: number, serverName: string): Promise<boolean> {
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

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((done) => child.once('exit', () => done()))
}

/**
 * Starts a project-run nats-server on a free loopback port with a temp store
 * dir and the generated tiered config (random passwords per run). Call
 * `stop()` in `after`; a process exit hook SIGKILLs anything left behind.
 */
export async function startNatsServer(options: StartNatsServerOptions = {}): Promise<TestNatsServer> {
  const binary = findNatsServerBinary()
  installExitHook()
  const tenants = options.tenants ?? []
  const withAuth = options.withAuth ?? true
  const dir = mkdtempSync(join(tmpdir(), 'eventplane-nats-'))
  tempDirs.add(dir)
  const storeDir = join(dir, 'jetstream')
  mkdirSync(storeDir)
  const configFile = join(dir, 'nats.conf')
  const logFile = join(dir, 'nats.log')
  const credentials: Record<string, NatsCredentials> = {}
  if (withAuth) {
    for (const user of [...SERVICE_USERS, ...tenants])
      credentials[user] = { user, pass: randomBytes(18).toString('base64url') }
  }
  const passwords = Object.fromEntries(Object.values(credentials).map((c) => [c.user, c.pass]))
  const serverName = `eventplane-test-${randomBytes(6).toString('hex')}`
  const writeConfig = (port: number): void => {
    const config = generateNatsConfig({
      tenants,
      consumers: options.consumers,
      passwords,
      storeDir,
      port,
      withAuth,
      serverName,
    })
    writeFileSync(configFile, config, { mode: 0o600 })
  }

  let child: ChildProcess | undefined
  let port = 0
  const connections = new Set<NatsConnection>()

  const spawnOn = async (p: number): Promise<boolean> => {
    const log = openSync(logFile, 'a')
    const proc = spawn(binary, ['-c', configFile], { stdio: ['ignore', log, log] })
    closeSync(log)
    live.add(proc)
    proc.once('exit', () => live.delete(proc))
    const spawnError = new Promise<Error>((done) => proc.once('error', done))
    const deadline = Date.now() + (options.startTimeoutMs ?? 10_000)
    while (Date.now() < deadline) {
      const failed = await Promise.race([spawnError, sleep(50).then(() => undefined)])
      if (failed) throw new Unavailable('bus.unavailable', INSTALL_HINT, { cause: failed })
      if (proc.exitCode !== null || proc.signalCode !== null) return false
      if (await greets(p, serverName)) {
        child = proc
        return true
      }
    }
    proc.kill('SIGKILL')
    await exited(proc)
    throw new Unavailable(
      'bus.unavailable',
      `nats-server did not accept connections on 127.0.0.1:${p} within the timeout; log: ${logTail()}`,
    )
  }
  const logTail = (): string => {
    try {
      return readFileSync(logFile, 'utf8').split('\n').slice(-5).join(' | ')
    } catch {
      return '(no log)'
    }
  }
  const closeConnections = async (): Promise<void> => {
    await Promise.allSettled([...connections].map((nc) => nc.close()))
    connections.clear()
  }
  /** Ends the process; clients stay open (they reconnect after `restart()`, as after a real crash). */
  const halt = async (signal: 'SIGTERM' | 'SIGKILL'): Promise<void> => {
    const proc = child
    child = undefined
    if (proc === undefined) return
    proc.kill(signal)
    const gone = await Promise.race([exited(proc).then(() => true), sleep(5000, false, { ref: false })])
    if (!gone) {
      proc.kill('SIGKILL')
      await exited(proc)
    }
  }

  try {
    for (let attempt = 0; child === undefined; attempt++) {
      if (attempt === 3)
        throw new Unavailable('bus.unavailable', `nats-server exited at startup three times; log: ${logTail()}`)
      port = await freePort()
      writeConfig(port)
      await spawnOn(port)
    }
  } catch (e) {
    rmSync(dir, { recursive: true, force: true })
    tempDirs.delete(dir)
    throw e
  }

  let stopped = false
  const url = `nats://127.0.0.1:${port}`
  return {
    url,
    port,
    storeDir,
    credentials,
    async connect(user = 'operator', extraOpts = {}) {
      const auth = withAuth ? credentials[user] : undefined
      if (withAuth && auth === undefined) throw new Error(`no NATS user ${user} on this server`)
      const tenantInbox = withAuth && tenants.includes(user) ? { inboxPrefix: tenantInboxPrefix(user) } : {}
      const nc = await natsConnect({ servers: url, ...auth, name: `test-${user}`, ...tenantInbox, ...extraOpts })
      connections.add(nc)
      void nc.closed().then(() => connections.delete(nc))
      return nc
    },
    async stop() {
      if (stopped) return
      stopped = true
      await closeConnections()
      await halt('SIGTERM')
      rmSync(dir, { recursive: true, force: true })
      tempDirs.delete(dir)
    },
    async kill() {
      await halt('SIGKILL')
    },
    async restart() {
      if (stopped) throw new Error('restart() after stop(): the store dir is gone')
      await halt('SIGTERM')
      if (!(await spawnOn(port)))
        throw new Unavailable('bus.unavailable', `nats-server could not restart on port ${port}; log: ${logTail()}`)
    },
  }
}
