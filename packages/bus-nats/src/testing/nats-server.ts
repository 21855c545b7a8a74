import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Unavailable } from '@eventplane/core'
import { type ConnectionOptions, type NatsConnection, connect as natsConnect } from '@nats-io/transport-node'
import { type AuthDir, initAuthDir, serviceCredsFile, tenantCredsFile } from '../nats-config/auth-dir.ts'
import { credsAuthenticator } from '../nkeys.ts'
import { SYSTEM_USER } from '../nats-config/claims.ts'
import { type ServiceUser, SERVICE_USERS, type UserPermissions } from '../nats-config/permissions.ts'
import { accountsConfig, generateNatsConfig } from '../nats-config/server-config.ts'
import { type TenantAdmin, connectTenantAdmin } from '../nats-config/tenant-admin.ts'
import {
  type AddTenantOptions,
  type AddedTenant,
  addTenant,
  issueTenantUser,
  revokeTenant,
} from '../nats-config/tenants.ts'
import { revokeServiceUsers } from './revoke-service-users.ts'
import { tenantInboxPrefix } from '../subjects.ts'
import {
  INSTALL_HINT,
  dieWithParent,
  exited,
  findNatsServerBinary,
  freePort,
  greets,
  OWN_PROCESS_GROUP,
  installExitHook,
  reapOnExit,
  tempDirs,
} from './nats-process.ts'

/**
 * The test servers' auth timeout: 2 s (the default) let a burst of credentialed test connections
 * fail with "Authentication Timeout" on a loaded machine; a loopback test server has no stray
 * clients to shed. Production configs keep the default.
 */
const TEST_AUTH_TIMEOUT_SECONDS = 10

export interface StartNatsServerOptions {
  /** Tenants added at start, each an account with one user and its consumers (default none). */
  tenants?: string[]
  /** Consumer names per tenant (default `<tenant>_tail`, `_proj`, `_ctl`). */
  consumers?: Record<string, string[]>
  /** Run in the account model (default true); false runs an open server. */
  withAuth?: boolean
  /** Milliseconds to wait for the server to accept connections (default 10 s). */
  startTimeoutMs?: number
  /** Serve the HTTP monitoring endpoints (`/connz`, `/subsz`, …) on a free loopback port (default false). */
  monitoring?: boolean
}

export interface NatsCredentials {
  user: string
  /** Path of the user's `.creds` file (mode 0600) in the server's auth dir. */
  creds: string
}

export interface TestNatsServer {
  url: string
  port: number
  /** `http://127.0.0.1:<port>` of the monitoring endpoints, with `monitoring: true`; otherwise undefined. */
  monitorUrl: string | undefined
  storeDir: string
  /** The operator side's auth dir (keys and creds, as `nats-setup` makes it); undefined without auth. */
  authDir: string | undefined
  /**
   * New keys per run; keyed by user: `system` (system account), `operator`, `relay`,
   * `gateway`, `controller` (log account) and each active tenant (its own account).
   */
  credentials: Record<string, NatsCredentials>
  /**
   * A connection as `user` (tenants get their `_INBOX_<tenant>` inbox prefix by
   * default); closed by `stop()`. Without auth the user is ignored.
   */
  connect(user?: string, extraOpts?: Partial<ConnectionOptions>): Promise<NatsConnection>
  /**
   * A connection in `tenant`'s account as a user without user-level permissions, so that
   * only the account boundary (its imports) limits it: what a tenant could do if its own
   * user grants were wide open. With `permissions`, a user with those grants instead (a
   * subscribe `deny` makes the server drop chosen messages on their way to it).
   */
  connectAccountUser(
    tenant: string,
    extraOpts?: Partial<ConnectionOptions>,
    permissions?: UserPermissions,
  ): Promise<NatsConnection>
  /** Adds a tenant live, as `evtctl tenant add` does (account, user, consumers). */
  addTenant(tenant: string, options?: AddTenantOptions): Promise<AddedTenant>
  /** Revokes a tenant live, as `evtctl tenant revoke` does; its credentials entry goes away. */
  revokeTenant(tenant: string): Promise<void>
  /**
   * Revokes service users of the log account live (its JWT pushed again with their keys revoked): the
   * server closes their connections and refuses their creds from then on, as for a revoked tenant.
   */
  revokeServiceUsers(users: readonly ServiceUser[]): Promise<void>
  /** The running server's process id (undefined while stopped): for benchmarks that read its CPU. */
  readonly pid: number | undefined
  /** SIGTERM, SIGKILL after a grace period; closes connections and removes the temp dir. Idempotent. */
  stop(): Promise<void>
  /** SIGKILL, keeping the store dir and leaving clients to see the crash: for recovery tests with `restart()`. */
  kill(): Promise<void>
  /**
   * Stops the server (SIGTERM) if running and starts it again on the same port and store dir; clients reconnect.
   * With `reconfigure`, the auth dir goes through `initAuthDir` again and the config is written from it: what a
   * re-run of `nats-setup` gives (the log account JWT the auth dir holds, with its revocations, preloaded).
   */
  restart(options?: { reconfigure?: boolean }): Promise<void>
}

/**
 * Starts a project-run nats-server on a free loopback port with a temp store
 * dir, in the account model: a fresh auth dir (operator, system and log
 * accounts, service users' creds) made by the same code as `nats-setup`, then
 * each tenant added live as `evtctl tenant add` does (which also creates the
 * log stream with default settings). Call `stop()` in `after`; a process exit
 * hook SIGKILLs anything left behind.
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
  let auth: AuthDir | undefined
  const resolverDir = join(dir, 'accounts')
  if (withAuth) {
    auth = await initAuthDir(join(dir, 'auth'))
    mkdirSync(resolverDir)
    for (const user of [SYSTEM_USER, ...SERVICE_USERS] as const)
      credentials[user] = { user, creds: serviceCredsFile(auth.dir, user) }
  }
  const serverName = `eventplane-test-${randomBytes(6).toString('hex')}`
  const monitorPort = options.monitoring ? await freePort() : undefined
  const writeConfig = (port: number): void => {
    const config = generateNatsConfig({
      storeDir,
      port,
      serverName,
      authTimeoutSeconds: TEST_AUTH_TIMEOUT_SECONDS,
      ...(auth === undefined ? {} : { accounts: accountsConfig(auth, resolverDir) }),
    })
    const monitor = monitorPort === undefined ? '' : `http: "127.0.0.1:${monitorPort}"\n`
    writeFileSync(configFile, config + monitor, { mode: 0o600 })
  }

  let child: ChildProcess | undefined
  let port = 0
  const connections = new Set<NatsConnection>()

  const spawnOn = async (p: number): Promise<boolean> => {
    const log = openSync(logFile, 'a')
    // Tests pause the server with SIGSTOP: in a process group of its own (see OWN_PROCESS_GROUP).
    // Killed with the test process however it dies (see dieWithParent), not only by the exit hook.
    const proc = spawn(...dieWithParent(binary, ['-c', configFile]), {
      stdio: ['ignore', log, log],
      ...OWN_PROCESS_GROUP,
    })
    closeSync(log)
    reapOnExit(proc)
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
  const track = (nc: NatsConnection): NatsConnection => {
    connections.add(nc)
    void nc.closed().then(() => connections.delete(nc))
    return nc
  }
  const needAuth = (): AuthDir => {
    if (auth === undefined) throw new Error('this nats-server runs without accounts (withAuth: false)')
    return auth
  }
  const withAdmin = async <T>(fn: (admin: TenantAdmin) => Promise<T>) => {
    const admin = await connectTenantAdmin(needAuth(), url)
    try {
      return await fn(admin)
    } finally {
      await admin.close()
    }
  }
  const server: TestNatsServer = {
    url,
    port,
    monitorUrl: monitorPort === undefined ? undefined : `http://127.0.0.1:${monitorPort}`,
    storeDir,
    authDir: auth?.dir,
    credentials,
    get pid() {
      return child?.pid
    },
    async connect(user = 'operator', extraOpts = {}) {
      const creds = withAuth ? credentials[user] : undefined
      if (withAuth && creds === undefined) throw new Error(`no NATS user ${user} on this server`)
      const isTenant = creds !== undefined && creds.creds === tenantCredsFile(auth!.dir, user)
      const nc = await natsConnect({
        servers: url,
        name: `test-${user}`,
        ...(creds === undefined ? {} : { authenticator: credsAuthenticator(readFileSync(creds.creds)) }),
        ...(isTenant ? { inboxPrefix: tenantInboxPrefix(user) } : {}),
        ...extraOpts,
      })
      return track(nc)
    },
    async connectAccountUser(tenant, extraOpts = {}, permissions = {}) {
      const user = Object.keys(permissions).length === 0 ? `${tenant}-unrestricted` : `${tenant}-restricted`
      const creds = await issueTenantUser(needAuth(), tenant, user, permissions)
      return track(
        await natsConnect({
          servers: url,
          name: `test-${user}`,
          authenticator: credsAuthenticator(creds),
          ...extraOpts,
        }),
      )
    },
    async addTenant(tenant, addOptions = {}) {
      const added = await withAdmin((admin) => addTenant(needAuth(), admin, tenant, addOptions))
      credentials[tenant] = { user: tenant, creds: added.credsFile }
      return added
    },
    async revokeServiceUsers(users) {
      const auth = needAuth()
      await withAdmin((admin) => revokeServiceUsers(auth, admin.system, users))
    },
    async revokeTenant(tenant) {
      await withAdmin((admin) => revokeTenant(needAuth(), admin, tenant))
      delete credentials[tenant]
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
    async restart(restartOptions = {}) {
      if (stopped) throw new Error('restart() after stop(): the store dir is gone')
      await halt('SIGTERM')
      if (restartOptions.reconfigure && auth !== undefined) {
        auth = await initAuthDir(auth.dir)
        writeConfig(port)
      }
      if (!(await spawnOn(port)))
        throw new Unavailable('bus.unavailable', `nats-server could not restart on port ${port}; log: ${logTail()}`)
    },
  }
  try {
    for (const tenant of tenants) {
      const consumers = options.consumers?.[tenant]
      await server.addTenant(tenant, consumers === undefined ? {} : { consumers })
    }
  } catch (e) {
    await server.stop()
    throw e
  }
  return server
}
