/**
 * Two nats-servers (`a`, `b`) routed into one cluster, each with its own JetStream store and full resolver
 * directory, both configured from one auth dir (as `nats-setup` writes each server's config, at each start) and comparing their
 * resolvers' JWTs every second (`resolverSyncSeconds`, production: 2 minutes).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { jetstreamManager } from '@nats-io/jetstream'
import {
  type AuthDir,
  type TenantAdmin,
  addTenant,
  connectAuthDirUser,
  initAuthDir,
  loadAuthDir,
} from '../../src/nats-config/index.ts'
import { activeRecord } from '../../src/nats-config/tenants.ts'
import { accountsConfig, generateNatsConfig } from '../../src/nats-config/server-config.ts'
import { exited, freePort, greets, tempDirs } from '../../src/testing/nats-process.ts'
import { dieWithParent, findNatsServerBinary, reapOnExit } from '../../src/testing/index.ts'
import { eventually } from '../fixtures.ts'
import { asTenantAdmin } from './auth-dir-ops.ts'

export type ClusterServer = 'a' | 'b'
const SERVERS: readonly ClusterServer[] = ['a', 'b']

export interface ResolverCluster {
  auth: AuthDir
  url(server: ClusterServer): string
  /** The account JWT `server`'s resolver directory stores for `account` (undefined: none). */
  stored(server: ClusterServer, account: string): string | undefined
  /** Writes `jwt` as what `server`'s resolver directory stores for `account` (only while it is stopped). */
  store(server: ClusterServer, account: string, jwt: string): void
  /** SIGTERM, until it exited. */
  stop(server: ClusterServer): Promise<void>
  /**
   * Starts it again on its ports and directories, its config generated from the auth dir of now; resolves once it
   * greets. `resolverSyncSeconds` (default 1): how often its resolver compares its JWTs with the other's (a server
   * started with an hour keeps what its directory holds, unless a push replaces it).
   */
  start(server: ClusterServer, options?: { resolverSyncSeconds?: number }): Promise<void>
  /** Stops both and removes their directories. */
  close(): Promise<void>
}

/** Starts the cluster and waits until its JetStream answers (both servers up: its meta group has a leader). */
export async function startResolverCluster(): Promise<ResolverCluster> {
  const root = mkdtempSync(join(tmpdir(), 'eventplane-cluster-'))
  tempDirs.add(root)
  const auth = await initAuthDir(join(root, 'auth'))
  const ports = new Map<ClusterServer, { client: number; route: number }>()
  for (const s of SERVERS) {
    mkdirSync(join(root, s, 'jetstream'), { recursive: true })
    mkdirSync(join(root, s, 'resolver'))
    ports.set(s, { client: await freePort(), route: await freePort() })
  }
  const port = (s: ClusterServer) => ports.get(s)!
  const resolverFile = (s: ClusterServer, account: string) => join(root, s, 'resolver', `${account}.jwt`)
  const children = new Map<ClusterServer, ChildProcess>()
  const url = (s: ClusterServer) => `nats://127.0.0.1:${port(s).client}`

  const start = async (s: ClusterServer, options: { resolverSyncSeconds?: number } = {}): Promise<void> => {
    const config = generateNatsConfig({
      storeDir: join(root, s, 'jetstream'),
      port: port(s).client,
      serverName: `cluster-${s}`,
      authTimeoutSeconds: 10,
      resolverSyncSeconds: options.resolverSyncSeconds ?? 1,
      // The auth dir as it is now (an operator rotation rewrites operator.jwt and the preloaded JWTs).
      accounts: accountsConfig(loadAuthDir(auth.dir), join(root, s, 'resolver')),
    })
    const routes = SERVERS.filter((o) => o !== s).map((o) => `"nats-route://127.0.0.1:${port(o).route}"`)
    const cluster = `cluster {\n  name: "eventplane-test"\n  listen: "127.0.0.1:${port(s).route}"\n  routes: [${routes.join(', ')}]\n}\n`
    writeFileSync(join(root, s, 'nats.conf'), config + cluster, { mode: 0o600 })
    const log = openSync(join(root, s, 'nats.log'), 'a')
    const child = spawn(...dieWithParent(findNatsServerBinary(), ['-c', join(root, s, 'nats.conf')]), {
      stdio: ['ignore', log, log],
    })
    closeSync(log)
    reapOnExit(child)
    children.set(s, child)
    const deadline = Date.now() + 15_000
    while (!(await greets(port(s).client, `cluster-${s}`))) {
      const tail = () =>
        readFileSync(join(root, s, 'nats.log'), 'utf8')
          .split('\n')
          .slice(-5)
          .join(' | ')
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server ${s} exited: ${tail()}`)
      if (Date.now() > deadline) throw new Error(`server ${s} did not greet within 15 s: ${tail()}`)
      await sleep(50)
    }
  }
  const stop = async (s: ClusterServer): Promise<void> => {
    const child = children.get(s)
    children.delete(s)
    if (child === undefined) return
    child.kill('SIGTERM')
    await exited(child)
  }
  const close = async (): Promise<void> => {
    await Promise.all(SERVERS.map(stop))
    rmSync(root, { recursive: true, force: true })
    tempDirs.delete(root)
  }

  try {
    await Promise.all(SERVERS.map((s) => start(s)))
    const operator = await connectAuthDirUser(auth, 'operator', url('a'))
    try {
      const jsm = await jetstreamManager(operator, { timeout: 1000, checkAPI: false })
      await eventually(
        () =>
          jsm.getAccountInfo().then(
            () => true,
            () => false,
          ),
        'the cluster JetStream to answer',
      )
    } finally {
      await operator.close()
    }
  } catch (e) {
    await close()
    throw e
  }
  return {
    auth,
    url,
    stored: (s, account) =>
      existsSync(resolverFile(s, account)) ? readFileSync(resolverFile(s, account), 'utf8') : undefined,
    store(s, account, jwt) {
      if (children.has(s)) throw new Error(`server ${s} is running: its resolver directory is its own`)
      writeFileSync(resolverFile(s, account), jwt)
    },
    stop,
    start,
    close,
  }
}

/** `fn` with a tenant admin connected to server `a` ({@link asTenantAdmin}). */
export function asClusterAdmin<T>(cluster: ResolverCluster, fn: (admin: TenantAdmin) => Promise<T>): Promise<T> {
  return asTenantAdmin(cluster.auth, cluster.url('a'), fn)
}

/** Adds each of `tenants` through server `a`, in turn; each one's account key. */
export async function addClusterTenants<T extends string>(
  cluster: ResolverCluster,
  tenants: readonly T[],
): Promise<Map<T, string>> {
  const accounts = new Map<T, string>()
  for (const t of tenants) {
    await asClusterAdmin(cluster, (admin) => addTenant(cluster.auth, admin, t))
    accounts.set(t, activeRecord(cluster.auth, t)!.account)
  }
  return accounts
}
