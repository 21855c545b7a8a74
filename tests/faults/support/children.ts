import { type ChildProcess, spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { ROLES } from '@eventplane/store-pg'
import { type BusEnv, REPO_ROOT, eventually, within } from '../../../packages/bus-nats/test/fixtures.ts'

const BINS = {
  relay: fileURLToPath(new URL('../../../packages/bus-nats/src/bin/relay.ts', import.meta.url)),
  gateway: fileURLToPath(new URL('../../../packages/bus-nats/src/bin/gateway.ts', import.meta.url)),
}

export type ServiceKind = keyof typeof BINS

/** A relay or gateway running as a child process (src/bin), so a test can SIGKILL it. */
export interface ServiceChild {
  kind: ServiceKind
  process: ChildProcess
  /** Parsed JSON log lines so far. */
  logs: Array<{ msg?: string; [key: string]: unknown }>
  hasLogged(msg: string): boolean
  waitForLog(msg: string, timeoutMs?: number): Promise<void>
  /** Sends `signal` (default SIGKILL) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>
  /** Freezes (SIGSTOP) or thaws (SIGCONT) the process, to look at its state while it cannot change it. */
  freeze(frozen: boolean): void
}

const children = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL')
})

/** The environment each service reads (see resolveRelayConfig / resolveGatewayConfig). */
function serviceEnv(env: BusEnv, kind: ServiceKind): Record<string, string> {
  const creds = env.server.credentials[kind]!
  const role = kind === 'relay' ? ROLES.relay : ROLES.intentWriter
  return {
    EVENTPLANE_DATABASE_URL: env.db.roleUrl(role),
    EVENTPLANE_NATS_URL: env.server.url,
    EVENTPLANE_NATS_USER: creds.user,
    EVENTPLANE_NATS_PASSWORD: creds.pass,
    ...(kind === 'relay' ? { EVENTPLANE_RELAY_POLL_MS: '200' } : {}),
  }
}

/** Spawns `src/bin/<kind>.ts` against the test database and nats-server; `extraEnv` tunes it (EVENTPLANE_RELAY_*). */
export function spawnService(env: BusEnv, kind: ServiceKind, extraEnv: Record<string, string> = {}): ServiceChild {
  const child = spawn(process.execPath, ['--import', 'tsx', BINS[kind]], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, ...serviceEnv(env, kind), ...extraEnv },
  })
  children.add(child)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  void exited.then(() => children.delete(child))
  const logs: ServiceChild['logs'] = []
  let buffered = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8')
    const lines = buffered.split('\n')
    buffered = lines.pop() ?? ''
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line))
      } catch {
        logs.push({ msg: line })
      }
    }
  })
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-2000)))
  const hasLogged = (msg: string): boolean => logs.some((l) => l.msg === msg)
  return {
    kind,
    process: child,
    logs,
    hasLogged,
    async waitForLog(msg, timeoutMs = 20_000) {
      await eventually(() => {
        if (child.exitCode !== null && !hasLogged(msg)) throw new Error(`${kind} exited (${child.exitCode}) before logging "${msg}": ${stderr}`)
        return hasLogged(msg)
      }, `${kind} to log "${msg}"`, timeoutMs)
    },
    freeze(frozen) {
      if (child.exitCode === null && child.signalCode === null) child.kill(frozen ? 'SIGSTOP' : 'SIGCONT')
    },
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      await within(exited, 10_000, `${kind} to exit`)
    },
  }
}

/**
 * Leaves `relay` frozen (SIGSTOP) at a moment when `lag()`, the events it published past its
 * stored checkpoint, is positive: it is in the middle of a batch and nothing it does can change
 * that before the test kills it. Freezes, lets in-flight publishes land, looks, and thaws it to
 * try again when it was between batches (at most 50 times).
 */
export async function freezeMidBatch(relay: ServiceChild, lag: () => Promise<number>): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    relay.freeze(true)
    await sleep(50)
    if ((await lag()) > 0) return
    relay.freeze(false)
    await sleep(5 + attempt)
  }
  throw new Error('the relay was never caught in the middle of a batch')
}
