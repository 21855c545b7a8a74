import type { Logger } from 'pino'
import type { Sql } from 'postgres'
import { type NatsConnection, connect as natsConnect } from '@nats-io/transport-node'
import { type RoleName, connectPg, redactUrl, roleUrl } from '@eventplane/store-pg'
import { Unavailable } from '@eventplane/core'
import { natsAuth, tenantInboxPrefix } from '@eventplane/bus-nats'
import type { ResolvedConfig } from './config.ts'
import { toEventplaneError } from './exit-codes.ts'
import type { CliIo, Output } from './io.ts'

/** Seconds evtctl waits for PostgreSQL or NATS before reporting them unavailable. */
export const CONNECT_TIMEOUT_S = 5

/**
 * What one command run holds: resolved config, output, logger, and the
 * connections it opened lazily (so `--help` and validation errors never
 * connect). `close()` releases everything; `run()` always calls it.
 */
export class Session {
  readonly #pools = new Map<string, Sql>()
  #nats: Promise<NatsConnection> | undefined
  readonly #cleanups: (() => Promise<unknown> | unknown)[] = []

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

  /** A small pool as `role` (derived from the admin URL with roleUrl()), or as the admin URL itself. */
  pg(role: RoleName | 'admin', max = 2): Sql {
    const existing = this.#pools.get(role)
    if (existing) return existing
    const url = role === 'admin' ? this.config.databaseUrl : roleUrl(this.config.databaseUrl, role, this.io.env)
    this.log.debug({ role, url: redactUrl(url) }, 'connecting to PostgreSQL')
    const sql = connectPg(url, { max, applicationName: 'evtctl', connectTimeout: CONNECT_TIMEOUT_S })
    this.#pools.set(role, sql)
    return sql
  }

  /**
   * One NATS connection with the configured creds file or user. A command
   * that acts for a tenant (`actingFor`) takes its replies on
   * `_INBOX_<tenant>`: the only inbox a tenant user may use, and the reply
   * space the gateway answers in for that tenant.
   */
  nats(actingFor?: string): Promise<NatsConnection> {
    this.#nats ??= (async () => {
      const { natsUrl, natsUser, natsPassword, natsCreds } = this.config
      this.log.debug({ url: redactUrl(natsUrl), user: natsUser, creds: natsCreds }, 'connecting to NATS')
      const auth = natsAuth({
        ...(natsCreds === undefined ? {} : { natsCreds }),
        ...(natsUser === undefined ? {} : { natsUser, natsPassword: natsPassword ?? '' }),
      })
      try {
        return await natsConnect({
          servers: natsUrl,
          name: 'evtctl',
          timeout: CONNECT_TIMEOUT_S * 1000,
          maxReconnectAttempts: 0,
          ...auth,
          ...(actingFor === undefined ? {} : { inboxPrefix: tenantInboxPrefix(actingFor) }),
        })
      } catch (e) {
        const typed = toEventplaneError(e)
        if (typed.code === 'bus.auth_failed' || typed.code === 'bus.forbidden') throw typed
        throw new Unavailable(
          'bus.unavailable',
          `cannot connect to NATS at ${redactUrl(natsUrl)}: ${(e as Error).message}`,
          { cause: e },
        )
      }
    })()
    return this.#nats
  }

  /** Runs `fn` when the session closes (in reverse order of registration). */
  onClose(fn: () => Promise<unknown> | unknown): void {
    this.#cleanups.push(fn)
  }

  /** Closes everything the command opened; never throws. */
  async close(): Promise<void> {
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
    await Promise.allSettled([...this.#pools.values()].map((sql) => sql.end({ timeout: 1 })))
    this.#pools.clear()
  }
}
