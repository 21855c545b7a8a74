import { EventplaneError } from '@eventplane/core'
import type { NatsConnection } from '@nats-io/transport-node'
import type { Sql } from '@eventplane/store-pg'
import type { Logger } from '../logger.ts'
import { DEFAULT_TENANT_LABEL_CAP, EventplaneMetrics } from './metrics.ts'
import {
  type OpsServer,
  type ReadinessCheck,
  natsCheck,
  postgresCheck,
  relayCheck,
  startOpsServer,
} from './ops-server.ts'

/** A positive integer setting of `env`, or undefined when unset; `bus.config` when malformed. */
function intFromEnv(env: NodeJS.ProcessEnv, key: string): number | undefined {
  const text = env[key]
  if (text === undefined || text === '') return undefined
  if (!/^[1-9]\d{0,8}$/.test(text))
    throw new EventplaneError('bus.config', `${key} must be a positive integer, got ${JSON.stringify(text)}`)
  return Number(text)
}

/** Where a process serves /healthz, /readyz and /metrics; off when `port` is undefined. */
export interface OpsConfig {
  port?: number
  host: string
  tenantLabelCap: number
}

/**
 * The ops endpoint settings from the environment: `EVENTPLANE_OPS_PORT` (unset:
 * off; 0: a free port, logged), `EVENTPLANE_OPS_HOST` (default 127.0.0.1) and
 * `EVENTPLANE_METRICS_TENANT_CAP` (distinct tenant labels, default 100). `bus.config` when malformed.
 */
export function opsConfigFromEnv(env: NodeJS.ProcessEnv = process.env): OpsConfig {
  const portText = env.EVENTPLANE_OPS_PORT
  let port: number | undefined
  if (portText !== undefined && portText !== '') {
    port = Number(portText)
    if (!/^\d{1,5}$/.test(portText) || port > 65535)
      throw new EventplaneError(
        'bus.config',
        `EVENTPLANE_OPS_PORT must be a port (0-65535), got ${JSON.stringify(portText)}`,
      )
  }
  const cap = env.EVENTPLANE_METRICS_TENANT_CAP === '0' ? 0 : intFromEnv(env, 'EVENTPLANE_METRICS_TENANT_CAP')
  return {
    ...(port === undefined ? {} : { port }),
    host: env.EVENTPLANE_OPS_HOST || '127.0.0.1',
    tenantLabelCap: cap ?? DEFAULT_TENANT_LABEL_CAP,
  }
}

export interface ServeOpsOptions {
  config: OpsConfig
  metrics: EventplaneMetrics
  /** PostgreSQL pools to check, by name (`postgres`, or one per role when a process has several). */
  pg?: Record<string, Sql>
  nc?: NatsConnection
  /** Relays whose lease state counts toward readiness (see relayCheck). */
  relays?: readonly { readonly name: string; readonly state: string }[]
  logger?: Logger
}

/**
 * Starts the ops endpoints of a process with its readiness checks (each
 * PostgreSQL pool, the NATS connection, each relay); resolves to undefined
 * when the config leaves them off. The one call a process entry point makes.
 */
export async function serveOps(options: ServeOpsOptions): Promise<OpsServer | undefined> {
  const { config, metrics } = options
  if (config.port === undefined) return undefined
  const checks: Record<string, ReadinessCheck> = {}
  for (const [name, sql] of Object.entries(options.pg ?? {})) checks[name] = postgresCheck(sql, metrics, name)
  if (options.nc) checks.nats = natsCheck(options.nc, metrics)
  for (const relay of options.relays ?? []) checks[`relay:${relay.name}`] = relayCheck(relay)
  return startOpsServer({
    port: config.port,
    host: config.host,
    metrics,
    checks,
    ...(options.logger ? { logger: options.logger } : {}),
  })
}

/** A metrics registry for a process configured by `config`. */
export function processMetrics(config: OpsConfig): EventplaneMetrics {
  return new EventplaneMetrics({ tenantLabelCap: config.tenantLabelCap })
}
