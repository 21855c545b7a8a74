import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { EventplaneError } from '@eventplane/core'
import { authDirLockNotice } from './auth-lock.ts'
import { initAuthDir, serviceCredsFile } from './auth-dir.ts'
import { SERVICE_USERS } from './permissions.ts'
import {
  untrustedPreloadError,
  untrustedPreloads,
  untrustedStoredAccounts,
  untrustedStoredError,
} from './resolver-trust.ts'
import { accountsConfig, generateNatsConfig } from './server-config.ts'

const USAGE = `usage: nats-setup --auth-dir DIR --store-dir DIR [options]
  --auth-dir DIR      the operator side's keys and creds (created if missing, mode 0700; keep it secret)
  --store-dir DIR     JetStream store directory of the server
  --resolver-dir DIR  where the server keeps pushed account JWTs (default <store-dir>/accounts)
  --port N            listen port (default 4222, or the port of the config --out names, when it exists)
  --host ADDR         listen address (default 127.0.0.1, or the address of the config --out names)
  --server-name NAME  server name (default eventplane)
  --out FILE          write the server config here instead of stdout
Creates what is missing of the auth dir (operator, system and log accounts and their signing
keys, the creds of the system, operator, relay, gateway and controller users), re-issues a service user's creds whose
grants this release changed (same user key), and prints a nats-server config in operator mode
with a full account resolver, preloading the log and system account JWTs with every key
revoked by evtctl creds rotate (kept in the auth dir). Tenants are added later, live: evtctl tenant add.
Exits 1 (after writing the config) when the resolver dir stores a JWT of the auth dir's accounts that
operator.jwt's keys did not sign: nats-server would refuse that account after its next start. Exits 1
before writing the config when what the config preloads, the auth dir's accounts/SYS.jwt or
accounts/EVENTPLANE.jwt, is not signed by operator.jwt's keys.`

const OPTIONS = {
  'auth-dir': { type: 'string' },
  'store-dir': { type: 'string' },
  'resolver-dir': { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  'server-name': { type: 'string', default: 'eventplane' },
  out: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

/** The command line, or `bus.config` in one line (an unknown option, a missing value) pointing at the help. */
function parseSetupArgs(argv: readonly string[]) {
  try {
    return parseArgs({ args: [...argv], options: OPTIONS })
  } catch (e) {
    throw new EventplaneError('bus.config', `${(e as Error).message.split('\n')[0]} (see nats-setup --help)`, {
      cause: e,
    })
  }
}

const DEFAULT_LISTEN = { host: '127.0.0.1', port: '4222' }

/**
 * Where the config `--out` names listens (its `listen: "host:port"` line), when that file exists and has one:
 * a re-run keeps what of it `--host` and `--port` do not change, so the command written once for the first run does not
 * move a server off the port its clients use (nats-setup's own default is 4222).
 */
function previousListen(out: string | undefined): { host: string; port: string } | undefined {
  if (out === undefined || !existsSync(out)) return undefined
  let text: string
  try {
    text = readFileSync(out, 'utf8')
  } catch {
    return undefined
  }
  const listen = /^listen:\s*"([^"]+)"\s*$/m.exec(text)?.[1]
  const colon = listen?.lastIndexOf(':') ?? -1
  if (listen === undefined || colon <= 0) return undefined
  return { host: listen.slice(0, colon), port: listen.slice(colon + 1) }
}

/** Runs a file system step; its failure is `bus.config`: `what` and the system's code (EACCES, ENOTDIR …). */
function fsStep(what: string, step: () => void): void {
  try {
    step()
  } catch (e) {
    throw new EventplaneError('bus.config', `${what} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, { cause: e })
  }
}

/**
 * `nats-setup`: prepares a NATS deployment for eventplane. Returns the exit
 * code; writes paths (never secrets) to `out`.
 */
export async function natsSetupMain(
  argv: readonly string[],
  io: { stdout: { write(s: string): unknown }; stderr: { write(s: string): unknown } } = process,
): Promise<number> {
  const out = io.stdout
  const { values } = parseSetupArgs(argv)
  if (values.help) {
    out.write(`${USAGE}\n`)
    return 0
  }
  if (values['auth-dir'] === undefined || values['store-dir'] === undefined)
    throw new EventplaneError('bus.config', '--auth-dir and --store-dir are required (see nats-setup --help)')
  // Each of --host and --port not given keeps what the config being replaced had, else the default.
  const previous = values.port === undefined || values.host === undefined ? previousListen(values.out) : undefined
  const listen = previous ?? DEFAULT_LISTEN
  const portText = values.port ?? listen.port
  const host = values.host ?? listen.host
  const port = Number(portText)
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new EventplaneError(
      'bus.config',
      values.port === undefined
        ? `the listen port ${portText} of ${values.out} is not a port`
        : `--port ${portText} is not a port`,
    )
  const authDir = resolve(values['auth-dir'])
  const storeDir = resolve(values['store-dir'])
  const resolverDir = resolve(values['resolver-dir'] ?? join(storeDir, 'accounts'))
  // The config's directory is made first (as the auth dir's and the store's are): one that cannot be fails
  // before anything is written.
  if (values.out !== undefined) {
    const outDir = dirname(resolve(values.out))
    fsStep(`cannot create the directory of --out ${values.out}`, () => mkdirSync(outDir, { recursive: true }))
  }
  fsStep(`cannot create the resolver dir ${resolverDir}`, () =>
    mkdirSync(resolverDir, { recursive: true, mode: 0o700 }),
  )
  const auth = await initAuthDir(authDir, authDirLockNotice('nats-setup', io.stderr))
  // What the config preloads must be what the operator's keys signed: checked before the config is written.
  const preloads = untrustedPreloads(auth)
  if (preloads.length > 0) throw untrustedPreloadError(preloads)
  const config = generateNatsConfig({
    storeDir,
    port,
    host,
    serverName: values['server-name'],
    accounts: accountsConfig(auth, resolverDir),
  })
  if (values.out === undefined) out.write(config)
  else {
    fsStep(`cannot write the config to ${values.out}`, () => writeFileSync(values.out!, config, { mode: 0o644 }))
    out.write(`server config written to ${resolve(values.out)}\n`)
    if (previous !== undefined)
      io.stderr.write(
        `nats-setup: listen ${host}:${port} (kept from the config it replaced; --host, --port change it)\n`,
      )
  }
  const users = ['system', ...SERVICE_USERS] as const
  io.stderr.write(
    `auth dir ${authDir}: creds of ${users.map((u) => `${u} (${serviceCredsFile(authDir, u)})`).join(', ')}\n`,
  )
  // A JWT the server answered but did not apply (an eventplane before pushes were confirmed, a server down
  // before a refused JWT was pushed over) is loaded at its next start, and its account refused.
  const untrusted = untrustedStoredAccounts(auth, resolverDir)
  if (untrusted.length > 0) throw untrustedStoredError(resolverDir, untrusted)
  return 0
}
