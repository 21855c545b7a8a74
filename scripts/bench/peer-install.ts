/**
 * The peer that `pnpm bench:peer` measures, Emmett's PostgreSQL event store, installed at run time into a
 * cache directory outside the repository and loaded from there by absolute path: it is never a dependency of
 * eventplane, and the version measured is pinned here and printed with the results.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { homedir } from 'node:os'
import { join } from 'node:path'

export const PEER_PACKAGE = '@event-driven-io/emmett-postgresql'
/** The version measured in docs/benchmarks.md; change it only with a new run written there. */
export const PEER_VERSION = '0.42.0'

/** Emmett's event: a type and a data object (its metadata, message id included, it makes itself). */
export interface PeerEvent {
  type: string
  data: unknown
}

/** The part of Emmett's `PostgresEventStore` the benchmark calls. */
export interface PeerEventStore {
  appendToStream(
    streamName: string,
    events: PeerEvent[],
    options?: { expectedStreamVersion?: bigint },
  ): Promise<{ nextExpectedStreamVersion: bigint }>
  schema: { migrate(): Promise<unknown> }
  close(): Promise<void>
}

/** node-postgres' pool, as far as the benchmark uses it. */
export interface PeerPgPool {
  end(): Promise<void>
}

export interface Peer {
  /** Installed versions: the event store, its Emmett core, its SQL layer (dumbo) and node-postgres. */
  versions: Record<string, string>
  /**
   * An event store on `connectionString` using a node-postgres pool of `max` connections (Emmett's own
   * default pool is node-postgres' default, 10), tagged `applicationName` in pg_stat_activity.
   */
  open(connectionString: string, max: number, applicationName: string): { store: PeerEventStore; pool: PeerPgPool }
}

/** `$XDG_CACHE_HOME/eventplane-bench-peer`, else `~/.cache/eventplane-bench-peer`. */
export function peerDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'eventplane-bench-peer')
}

function installedVersion(dir: string, name: string): string | undefined {
  const file = join(dir, 'node_modules', name, 'package.json')
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version : undefined
}

/**
 * The environment for npm: pnpm's own `npm_config_*` settings (which npm warns about) left out, the ones
 * that say where and how to reach a registry kept.
 */
function npmEnv(): NodeJS.ProcessEnv {
  const keep = /^npm_config_(registry|cache|userconfig|proxy|https_proxy|noproxy|strict_ssl|cafile)$/i
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_config_/i.test(k) || keep.test(k)))
}

/** Installs the pinned peer into {@link peerDir} unless that version is there already, then loads it. */
export function loadPeer(): Peer {
  const dir = peerDir()
  if (installedVersion(dir, PEER_PACKAGE) !== PEER_VERSION) {
    process.stderr.write(`installing ${PEER_PACKAGE}@${PEER_VERSION} into ${dir} (not a project dependency)\n`)
    execFileSync(
      'npm',
      ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', dir, `${PEER_PACKAGE}@${PEER_VERSION}`],
      { stdio: ['ignore', 2, 2], env: npmEnv() },
    )
  }
  // Both through one CommonJS require rooted in the cache: the pool we hand Emmett is then an instance of the
  // very node-postgres class its SQL layer checks against.
  const load = createRequire(join(dir, 'node_modules', 'bench-peer.cjs'))
  const emmett = load(PEER_PACKAGE) as {
    getPostgreSQLEventStore(url: string, options: { connectionOptions: { pool: unknown } }): PeerEventStore
  }
  const pg = load('pg') as { Pool: new (options: Record<string, unknown>) => PeerPgPool }
  const versions: Record<string, string> = {}
  for (const name of [PEER_PACKAGE, '@event-driven-io/emmett', '@event-driven-io/dumbo', 'pg'])
    versions[name] = installedVersion(dir, name) ?? '?'
  return {
    versions,
    open(connectionString, max, applicationName) {
      // idleTimeoutMillis as ours (postgres.js idle_timeout 30 s): a round of the other sides does not cost
      // the peer its connections.
      const pool = new pg.Pool({ connectionString, max, idleTimeoutMillis: 30_000, application_name: applicationName })
      return { store: emmett.getPostgreSQLEventStore(connectionString, { connectionOptions: { pool } }), pool }
    },
  }
}
