import type { Logger } from 'pino'
import type { NatsConnection } from '@nats-io/transport-node'
import type { StopWaits } from '@eventplane/bus-nats'
import { type RoleName, type Sql, connectPg, redactUrl, roleUrl } from '@eventplane/store-pg'
import { EventplaneError, Unavailable, type ValidStreamRef } from '@eventplane/core'
import type { Domain } from '@eventplane/runtime'
import type { ResolvedConfig } from './config.ts'
import { CliError, type EvtctlError } from './cli-error.ts'
import { toEventplaneError } from './exit-codes.ts'
import { DOMAIN_HINT } from './config.ts'
import type { CliIo, Output } from './io.ts'
import { guardPool } from './pg-guard.ts'
import { describeTarget, pgTarget } from './pg-target.ts'

/**
 * What a NATS connection needs, loaded on the first one: nats.js and the bus package are a third of a command's
 * start, which commands that only read PostgreSQL (read, streams, state, trace, export …) never pay.
 */
const natsModules = async () => {
  const [{ connect }, bus, { natsUserName }, { connectForCommand, LoginWatch }] = await Promise.all([
    import('./nats-connect.ts'),
    import('@eventplane/bus-nats'),
    import('./services/connection-closed.ts'),
    import('./nats-login.ts'),
  ])
  return { connect, connectForCommand, LoginWatch, natsUserName, ...bus }
}

/** Seconds evtctl waits for PostgreSQL or NATS before reporting them unavailable. */
export const CONNECT_TIMEOUT_S = 5

/** How long a service's connection gives one dial to be accepted before it dials again (nats.js's default). */
const SERVICE_DIAL_TIMEOUT_MS = 20_000

/**
 * What one command run holds: resolved config, output, logger, and the
 * connections it opened lazily (so `--help` and validation errors never
 * connect). `close()` releases everything; `run()` always calls it.
 */
export class Session {
  readonly #pools = new Map<string, Sql>()
  /** Per pool: its first connection's failure, if it failed (see guardPool). */
  readonly #guards = new Map<string, Promise<EvtctlError | undefined>>()
  #nats: Promise<NatsConnection> | undefined
  #domain: Promise<Domain> | undefined
  readonly #services = new Map<string, Promise<NatsConnection>>()
  readonly #cleanups: (() => Promise<unknown> | unknown)[] = []
  /** The NATS user's name (natsUserName), read when the first NATS connection is made. */
  #user: { value: string | undefined } | undefined
  /** The tenant or stream the command's NATS connection acts for (see nats). */
  #actingFor: string | ValidStreamRef | undefined
  #stopWaits: StopWaits | undefined

  constructor(
    readonly io: CliIo,
    readonly config: ResolvedConfig,
    readonly out: Output,
    readonly log: Logger,
  ) {}

  /** Aborted on SIGINT/SIGTERM (or by the embedding test). */
  get signal(): AbortSignal | undefined {
    return this.io.signal
  }

  /**
   * A small pool as `role`, or as the admin URL itself. The role's URL is
   * `EVENTPLANE_DATABASE_URL_<ROLE>` when set, else the configured URL when
   * it already names the role (a service's own URL, password included), else
   * the configured URL with the role as user (roleUrl()).
   */
  pg(role: RoleName | 'admin', max = 2, applicationName = 'evtctl'): Sql {
    const existing = this.#pools.get(role)
    if (existing) return existing
    const url = this.#urlFor(role)
    this.log.debug({ role, url: redactUrl(url) }, 'connecting to PostgreSQL')
    const sql = connectPg(url, { max, applicationName, connectTimeout: CONNECT_TIMEOUT_S })
    this.#pools.set(role, sql)
    this.#guards.set(role, guardPool(sql, pgTarget(url), CONNECT_TIMEOUT_S * 1000))
    return sql
  }

  /** Where this process connects, safe to log: each role's URL and the NATS URL redacted, the NATS identity. */
  describe(roles: readonly RoleName[]): Record<string, unknown> {
    const { natsUrl, natsUser, natsCreds } = this.config
    return {
      database: Object.fromEntries(roles.map((role) => [role, redactUrl(this.#urlFor(role))])),
      nats: redactUrl(natsUrl),
      ...(natsUser === undefined ? {} : { nats_user: natsUser }),
      ...(natsCreds === undefined ? {} : { nats_creds: natsCreds }),
      sources: this.config.sources,
    }
  }

  #urlFor(role: RoleName | 'admin'): string {
    const configured = this.config.databaseUrl
    if (role === 'admin') return configured
    const derived = roleUrl(configured, role, this.io.env)
    const overridden = derived !== roleUrl(configured, role, {})
    return !overridden && decodeURIComponent(new URL(configured).username) === role ? configured : derived
  }

  /**
   * The root cause to report for a failed command: when a pool could not
   * connect, that failure (naming server, database and role) rather than
   * what it did to the command's queries; a missing schema names the
   * database to migrate. A `bus.forbidden` of a command (`command`) that acted for one tenant with another's creds
   * says so (crossTenantRefusal). Anything else is returned as it is.
   */
  async rootCause(e: unknown, command = ''): Promise<unknown> {
    const typed = await toEventplaneError(e)
    if (typed.code === 'bus.forbidden' && this.#actingFor !== undefined) {
      const { crossTenantRefusal } = await import('./tenant-refusal.ts')
      return crossTenantRefusal(typed, command, this.#actingFor, this.#user?.value) ?? e
    }
    if (!typed.code.startsWith('store.') && typed.code !== 'cli.internal') return e
    for (const guard of this.#guards.values()) {
      const failure = await guard
      if (failure) return failure
    }
    if (typed.details.missing === 'schema') {
      return new Unavailable(
        'store.unavailable',
        `the eventplane schema is missing in ${describeTarget(pgTarget(this.config.databaseUrl))}: run evtctl migrate with this database URL`,
        { cause: e },
      )
    }
    return e
  }

  /**
   * One NATS connection with the configured creds file or user. A command
   * that acts for a tenant (`actingFor`) takes its replies on
   * `_INBOX_<tenant>`: the only inbox a tenant user may use, and the reply
   * space the gateway answers in for that tenant. A stream reference parsed
   * in this process (publish's) names the tenant without a second parse.
   */
  nats(actingFor?: string | ValidStreamRef): Promise<NatsConnection> {
    this.#nats ??= (async () => {
      const { connectForCommand, natsAuth, natsUserName, inboxPrefixFor, tenantInboxPrefix } = await natsModules()
      // Read from the creds now: they may be gone by the time a failure names the user.
      this.#user ??= { value: natsUserName(this.config) }
      this.#actingFor = actingFor
      const { natsUrl, natsUser, natsPassword, natsCreds } = this.config
      this.log.debug({ url: redactUrl(natsUrl), user: natsUser, creds: natsCreds }, 'connecting to NATS')
      const auth = natsAuth({
        ...(natsCreds === undefined ? {} : { natsCreds }),
        ...(natsUser === undefined ? {} : { natsUser, natsPassword: natsPassword ?? '' }),
      })
      try {
        return await connectForCommand(
          {
            servers: natsUrl,
            name: 'evtctl',
            maxReconnectAttempts: 0,
            ...auth,
            ...(actingFor === undefined
              ? {}
              : {
                  inboxPrefix: typeof actingFor === 'string' ? tenantInboxPrefix(actingFor) : inboxPrefixFor(actingFor),
                }),
          },
          redactUrl(natsUrl),
          CONNECT_TIMEOUT_S,
        )
      } catch (e) {
        throw this.#withoutCredentials(await toEventplaneError(e))
      }
    })()
    return this.#nats
  }

  /**
   * The configured domain, loaded once. Without one, `cli.config` saying
   * that `command` needs a domain and how to name it (exit 1).
   */
  domain(command: string): Promise<Domain> {
    const spec = this.config.domain
    if (spec === undefined) {
      return Promise.reject(new CliError('cli.config', `${command} needs a domain: ${DOMAIN_HINT}`))
    }
    // Imported here: only commands that run a domain pay for loading the runtime.
    this.#domain ??= import('./domain.ts').then(({ loadDomain }) => loadDomain(spec, this.io.cwd ?? process.cwd()))
    return this.#domain
  }

  /**
   * A NATS connection of a long-running service (relay, gateway, runner):
   * named `name` for the server's monitoring, waiting for a server that is
   * not up yet and reconnecting for ever. A refused login still fails
   * (`bus.auth_failed`, one line; after a look-up of the creds' account, the
   * line a command gives, naming the likely causes, at the first such refusal:
   * LoginWatch). Drained when the session closes.
   */
  serviceNats(name: string): Promise<NatsConnection> {
    const existing = this.#services.get(name)
    if (existing) return existing
    const { natsUrl, natsUser, natsPassword, natsCreds } = this.config
    this.log.debug({ url: redactUrl(natsUrl), name }, 'connecting to NATS')
    const connection = natsModules().then(({ connect, natsAuth, natsUserName, LoginWatch }) => {
      // Read from the creds now: they may be gone by the time a failure names the user.
      this.#user ??= { value: natsUserName(this.config) }
      const auth = natsAuth({
        ...(natsCreds === undefined ? {} : { natsCreds }),
        ...(natsUser === undefined ? {} : { natsUser, natsPassword: natsPassword ?? '' }),
      })
      const login = new LoginWatch()
      return connect({
        servers: natsUrl,
        name,
        ...auth,
        authenticator: login.authenticator(auth.authenticator),
        waitOnFirstConnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        timeout: SERVICE_DIAL_TIMEOUT_MS,
        reconnectToServer: login.firstConnectRetries(redactUrl(natsUrl), SERVICE_DIAL_TIMEOUT_MS),
      }).catch(async (e: unknown) => {
        const typed = this.#withoutCredentials(
          login.lookedUpRefusal(e, redactUrl(natsUrl)) ?? (await toEventplaneError(e)),
        )
        throw typed.code === 'bus.auth_failed' ? typed : e
      })
    })
    connection.catch(() => {})
    this.#services.set(name, connection)
    return connection
  }

  /**
   * A refused login with no credentials configured at all: the server wants some (an auth dir's deployment),
   * and the line says how to give them rather than that they were refused.
   */
  #withoutCredentials(typed: EvtctlError): EvtctlError {
    const { natsUrl, natsUser, natsCreds } = this.config
    if (typed.code !== 'bus.auth_failed' || natsCreds !== undefined || natsUser !== undefined) return typed
    return new EventplaneError(
      'bus.auth_failed',
      `NATS at ${redactUrl(natsUrl)} requires credentials and none were given: pass --nats-creds <file> ` +
        '(or EVENTPLANE_NATS_CREDS, or natsCreds in the config file; nats-setup writes them to <auth-dir>/creds/)',
      { cause: typed },
    )
  }

  /**
   * The NATS user this process connects as, for failure lines (`user <name>`; see natsUserName in
   * services/connection-closed.ts): read from the creds when the first NATS connection is made.
   */
  get natsIdentity(): string | undefined {
    const name = this.#user?.value
    return name === undefined ? undefined : `user ${name}`
  }

  /**
   * The server waits of this process's stop (see StopWaits): its parts' (serve) and its connections' drains
   * (close), so a server that stopped answering costs the stop one bounded wait, not one per part and connection.
   */
  async stopWaits(): Promise<StopWaits> {
    const { StopWaits } = await natsModules()
    this.#stopWaits ??= new StopWaits()
    return this.#stopWaits
  }

  /** Runs `fn` when the session closes (in reverse order of registration). */
  onClose(fn: () => Promise<unknown> | unknown): void {
    this.#cleanups.push(fn)
  }

  /**
   * Closes everything the command opened; never throws. `abandon` (the command was interrupted) ends the
   * PostgreSQL pools at once instead of giving their queries a second: nothing of an abandoned command is
   * waited for, and a pool still connecting to a server that never answers would hold the exit for it.
   */
  async close(abandon = false): Promise<void> {
    for (const fn of this.#cleanups.reverse()) {
      try {
        await fn()
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'cleanup failed')
      }
    }
    const nats = this.#nats
    this.#nats = undefined
    if (nats)
      await nats.then(
        (nc) => nc.close(),
        () => undefined,
      )
    const services = [...this.#services.entries()]
    this.#services.clear()
    // A service's connection drains: what it published or acked is flushed before it goes. One the server
    // closes meanwhile (its user revoked: refused while reconnecting) or that stalled never finishes draining
    // (nats.js leaves the drain's PING unanswered): its close or the deadline ends the wait. All at once, and
    // among the stop's waits: once the server did not answer one of its parts, each gets a short one.
    await Promise.allSettled(services.map(([name, c]) => c.then((nc) => this.#drain(name, nc))))
    await Promise.allSettled([...this.#pools.values()].map((sql) => sql.end({ timeout: abandon ? 0 : 1 })))
    this.#pools.clear()
  }

  async #drain(name: string, nc: NatsConnection): Promise<void> {
    if (nc.isClosed()) return
    const { outcome, waitedMs } = await (await this.stopWaits()).wait(nc, nc.drain())
    if (outcome !== 'timed_out') return
    this.log.warn(
      { connection: name, waited_ms: waitedMs, event: 'nats.drain_timeout' },
      'the NATS connection did not drain: the server did not answer; closed without it',
    )
    await nc.close()
  }
}
