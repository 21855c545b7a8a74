import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { type Command, Option } from 'commander'
import { EventplaneError, Unavailable } from '@eventplane/core'
import {
  type AuthDir,
  type TenantAdmin,
  type TenantRecord,
  addTenant,
  authDirLockNotice,
  connectTenantAdmin,
  identitySeedsLeftOnHost,
  listTenants,
  loadAuthDir,
  revokeStagedTenantKeys,
  revokeTenant,
  rotateTenantUser,
  seedPath,
} from '@eventplane/bus-nats/nats-config'
import { redactUrl } from '@eventplane/store-pg'
import { toEventplaneError } from '../exit-codes.ts'
import { type CommandKit, helpAfter } from '../command-kit.ts'
import { CONNECT_TIMEOUT_S, type Session } from '../session.ts'
import { CliError, type EvtctlErrorCode } from '../cli-error.ts'

/**
 * The auth dir of `--auth-dir` or `EVENTPLANE_NATS_AUTH_DIR`; `cli.config` without one. A change that waits a
 * second for another holder of its lock says so on stderr, once (`evtctl: waiting for the auth dir lock …`).
 */
export function authDir(session: Session): AuthDir {
  const dir = session.config.natsAuthDir
  if (dir === undefined)
    throw new CliError(
      'cli.config',
      'no NATS auth dir: give --auth-dir or EVENTPLANE_NATS_AUTH_DIR (made by nats-setup, see infra/nats)',
    )
  return { ...loadAuthDir(dir), lock: authDirLockNotice('evtctl', session.io.stderr) }
}

/**
 * Opens an auth dir connection with `open` (one attempt, no reconnect) and closes it with the session. A refusal
 * or a bad auth dir keeps its code; anything else is `bus.unavailable` naming the URL (its password hidden).
 */
export async function authDirConnection<T extends { close(): Promise<unknown> }>(
  session: Session,
  open: (url: string, options: { timeout: number; maxReconnectAttempts: number }) => Promise<T>,
): Promise<T> {
  const url = session.config.natsUrl
  try {
    const c = await open(url, { timeout: CONNECT_TIMEOUT_S * 1000, maxReconnectAttempts: 0 })
    session.onClose(() => c.close())
    return c
  } catch (e) {
    const typed = await toEventplaneError(e)
    if (typed.code === 'bus.auth_failed' || typed.code === 'bus.config' || typed.code === 'cli.config') throw typed
    throw new Unavailable('bus.unavailable', `cannot connect to NATS at ${redactUrl(url)}: ${typed.message}`, {
      cause: e,
    })
  }
}

/** What the server an auth dir connection reached did or answered: a push of an account JWT, a consumer change. */
const SERVER_FAILURES: ReadonlySet<string> = new Set([
  'bus.unavailable',
  'bus.timeout',
  'bus.bad_request',
  'bus.jwt_not_applied',
  'bus.forbidden',
])

/**
 * `work` on auth dir connections (tenant, creds and keys commands); its failure at the server (a push refused or
 * unanswered, see SERVER_FAILURES) names the NATS URL it went to, its password hidden, keeping its code: a push to
 * a server other than the one nats-setup configured is told by its URL. Others pass as they are, and so does a
 * failure that names the URL already (a connection {@link authDirConnection} could not open inside `work`) and the
 * auth dir lock's timeout (`bus.unavailable` too, but no server's doing).
 */
export async function atServer<T>(session: Session, work: Promise<T>): Promise<T> {
  try {
    return await work
  } catch (e) {
    const typed = await toEventplaneError(e)
    const url = redactUrl(session.config.natsUrl)
    const named = typed.message.includes(`NATS at ${url}`)
    if (!SERVER_FAILURES.has(typed.code) || named || typed.details.auth_dir_lock !== undefined) throw typed
    const message = `NATS at ${url}: ${typed.message}`
    throw new EventplaneError<EvtctlErrorCode>(typed.code, message, { cause: e, details: typed.details })
  }
}

/** The auth dir's `system` and `operator` connections; closed with the session. */
export function admin(session: Session, auth: AuthDir): Promise<TenantAdmin> {
  return authDirConnection(session, (url, options) => connectTenantAdmin(auth, url, options))
}

const record = (r: TenantRecord) => ({ ...r })

function humanRecord(r: TenantRecord): string {
  const when = r.status === 'revoked' ? `revoked ${r.revoked_at}` : `added ${r.added_at}`
  return `${r.tenant.padEnd(20)} ${r.status.padEnd(8)} ${r.account}  ${r.consumers.join(',')}  ${when}`
}

/**
 * While the identity seeds are offline (`keys offline`; `offlineTo`: where), a tenant's new identity seed stays on
 * the host until `keys offline` runs again: what to run, or undefined when its seed is not left on the host.
 */
function seedLeftOnHost(auth: AuthDir, tenant: string, offlineTo: string | undefined): string | undefined {
  const seed = seedPath(tenant)
  if (offlineTo === undefined || !existsSync(join(auth.dir, seed))) return undefined
  return `the other identity seeds are offline, ${seed} is on this host until: evtctl keys offline --to ${offlineTo}`
}

const collect = (value: string, previous: string[]): string[] => [...previous, value]

/**
 * `evtctl tenant add|list|rotate|revoke-old|revoke`: tenants are NATS accounts, added,
 * rotated and revoked live through the server's account resolver (no
 * restart, other tenants untouched). Creds files are written with mode 0600
 * and never printed.
 */
export function registerTenant(program: Command, kit: CommandKit): void {
  const tenant = program
    .command('tenant')
    .description('add, list, rotate and revoke tenants: one NATS account each, changed live (no server restart)')
    .option('--auth-dir <dir>', 'the NATS auth dir made by nats-setup (env EVENTPLANE_NATS_AUTH_DIR)')
    .addHelpText(
      'after',
      helpAfter(
        'Each tenant is a NATS account that imports only its submit subjects, its durable consumers',
        "and its own log subjects; its user's creds file is written to <auth-dir>/tenants/<tenant>.creds",
        '(mode 0600). Changes are pushed to the server as account JWTs, so they apply at once.',
        '',
        'Examples:',
        '  $ evtctl tenant add acme --auth-dir /etc/eventplane/nats-auth',
        '  $ evtctl tenant add acme --consumer acme_tail --consumer acme_audit',
        '  $ evtctl tenant list --json',
        '  $ evtctl tenant rotate acme        # new creds file; the old one is refused from now on',
        '  $ evtctl tenant rotate acme --keep-old   # the old key still works until:',
        '  $ evtctl tenant revoke-old acme          # once acme uses its new creds',
        '  $ evtctl tenant revoke acme',
        '  $ evtctl tenant add acme --readmit   # acme again (it reads its old events): never for another tenant',
      ),
    )

  tenant
    .command('add')
    .description('add a tenant (or re-apply an existing one): account, user creds, consumers')
    .argument('<tenant>', 'tenant name')
    .addOption(
      new Option('--consumer <name>', 'a durable consumer, its full name <tenant>_… (repeatable)')
        .argParser(collect)
        .default([], '<tenant>_tail, <tenant>_proj, <tenant>_ctl'),
    )
    .option(
      '--readmit',
      'add a revoked tenant again: the account reads every event stored under its name (the same tenant only)',
    )
    .action(
      kit.action(async (session, cmd) => {
        const auth = authDir(session)
        const { consumer: consumers, readmit } = cmd.opts<{ consumer: string[]; readmit?: boolean }>()
        // The offline record read (and checked) before the add: a corrupted one fails it with nothing changed.
        const offlineTo = identitySeedsLeftOnHost(auth)?.to
        const connections = await admin(session, auth)
        const added = await atServer(
          session,
          addTenant(auth, connections, cmd.args[0]!, {
            ...(consumers.length > 0 ? { consumers } : {}),
            ...(readmit === true ? { readmit } : {}),
          }),
        )
        const r = added.record
        session.log.info({ tenant: r.tenant, account: r.account, created: added.created }, 'tenant added')
        const next = seedLeftOnHost(auth, r.tenant, offlineTo)
        session.out.emit(
          { ...record(r), creds_file: added.credsFile, created: added.created, ...(next ? { next } : {}) },
          () => [
            `tenant     ${r.tenant} (${added.created ? 'added' : 'already active, re-applied'})`,
            `account    ${r.account}`,
            `consumers  ${r.consumers.join(', ')}`,
            `creds      ${added.credsFile} (mode 0600: hand it to the tenant, keep it secret)`,
            ...(next ? [`next       ${next}`] : []),
          ],
        )
      }),
    )

  tenant
    .command('list')
    .description('list the tenants of the auth dir, active and revoked')
    .action(
      kit.action(async (session) => {
        const records = listTenants(authDir(session))
        if (records.length === 0) session.out.line('(no tenants)')
        for (const r of records) session.out.emit(record(r), () => humanRecord(r))
      }),
    )

  tenant
    .command('rotate')
    .description("rotate a tenant's user: new creds file, the old key revoked (now, or later with --keep-old)")
    .argument('<tenant>', 'tenant name')
    .option('--keep-old', 'keep the old key valid until `tenant revoke-old` (time for the tenant to switch)')
    .action(
      kit.action<{ keepOld?: boolean }>(async (session, cmd, opts) => {
        const auth = authDir(session)
        const connections = await admin(session, auth)
        const r = await atServer(
          session,
          rotateTenantUser(auth, connections, cmd.args[0]!, { keepOld: opts.keepOld === true }),
        )
        session.log.info(
          { tenant: r.record.tenant, key: r.key, revoked: r.revoked, staged: r.staged },
          'tenant user rotated',
        )
        session.out.emit(
          { ...record(r.record), creds_file: r.credsFile, key: r.key, revoked: r.revoked, staged: r.staged },
          () => [
            `tenant     ${r.record.tenant} (user rotated)`,
            `creds      ${r.credsFile} (mode 0600: hand it to the tenant, keep it secret)`,
            `key        ${r.key}`,
            ...r.revoked.map((k) => `revoked    ${k} (connections closed, refused from now on)`),
            ...r.staged.map((k) => `staged     ${k} (still valid until: evtctl tenant revoke-old ${r.record.tenant})`),
          ],
        )
      }),
    )

  tenant
    .command('revoke-old')
    .description('revoke the keys a `tenant rotate --keep-old` left valid')
    .argument('<tenant>', 'tenant name')
    .action(
      kit.action(async (session, cmd) => {
        const auth = authDir(session)
        const tenantName = cmd.args[0]!
        const connections = await admin(session, auth)
        const revoked = await atServer(session, revokeStagedTenantKeys(auth, connections, tenantName))
        session.log.info({ tenant: tenantName, revoked }, 'staged tenant keys revoked')
        session.out.emit({ tenant: tenantName, revoked }, () =>
          revoked.length === 0
            ? [`no staged keys for ${tenantName} (its account JWT was pushed again)`]
            : revoked.map((k) => `revoked    ${k} (connections closed, refused from now on)`),
        )
      }),
    )

  tenant
    .command('revoke')
    .description('revoke a tenant: its connections are closed, its creds refused, its consumers deleted')
    .argument('<tenant>', 'tenant name')
    .action(
      kit.action(async (session, cmd) => {
        const auth = authDir(session)
        const connections = await admin(session, auth)
        const r = await atServer(session, revokeTenant(auth, connections, cmd.args[0]!))
        session.log.info({ tenant: r.tenant, account: r.account }, 'tenant revoked')
        session.out.emit(record(r), () => [
          `tenant     ${r.tenant} revoked`,
          `account    ${r.account} (connections closed, creds refused from now on)`,
        ])
      }),
    )
}
