import postgres, { type Sql } from 'postgres'

/**
 * The database roles the migrations create (DESIGN §3). `owner` and `guard`
 * cannot log in: the owner owns the schema and the append functions, the
 * guard owns the functions that see and end stuck transactions.
 */
export const ROLES = {
  owner: 'eventplane_owner',
  intentWriter: 'eventplane_intent_writer',
  factWriter: 'eventplane_fact_writer',
  reader: 'eventplane_reader',
  relay: 'eventplane_relay',
  projector: 'eventplane_projector',
  operator: 'eventplane_operator',
  guard: 'eventplane_guard',
} as const
export type RoleName = (typeof ROLES)[keyof typeof ROLES]

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres'

export interface ConnectOptions {
  /** Pool size (default 10). */
  max?: number
  applicationName?: string
  /** Seconds to wait for a connection before failing with `store.unavailable`. */
  connectTimeout?: number
}

/**
 * A postgres.js pool with eventplane's defaults: notices silenced (idempotent
 * migrations are chatty), a connect timeout, and an application name visible
 * in pg_stat_activity (so `status` can say who holds the log back).
 */
export function connectPg(url: string, options: ConnectOptions = {}): Sql {
  return postgres(url, {
    max: options.max ?? 10,
    onnotice: () => {},
    connect_timeout: options.connectTimeout ?? 10,
    idle_timeout: 30,
    connection: { application_name: options.applicationName ?? 'eventplane' },
  })
}

/**
 * The URL for one role: `EVENTPLANE_DATABASE_URL_<ROLE>` when set (for
 * passwords or another host), else the admin URL with the role as user.
 */
export function roleUrl(adminUrl: string, role: RoleName, env: NodeJS.ProcessEnv = process.env): string {
  const override = env[`EVENTPLANE_DATABASE_URL_${role.replace(/^eventplane_/, '').toUpperCase()}`]
  if (override) return override
  const url = new URL(adminUrl)
  url.username = role
  url.password = ''
  return url.toString()
}

/** A URL safe to print: the password replaced. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return '<unparseable url>'
  }
}
