import { DEFAULT_DATABASE_URL, PgEventStore, ROLES, connectPg, redactUrl, roleUrl } from '@eventplane/store-pg'
import { connect } from '@nats-io/transport-node'
import { natsAuth } from './nats-auth.ts'
import { pino } from 'pino'
import { startGateway } from './gateway.ts'
import { DEFAULT_GATEWAY_CONCURRENCY, type GatewayLimits, resolveLimits } from './gateway-limits.ts'
import { errorFields } from './logger.ts'
import { type OpsConfig, opsConfigFromEnv, processMetrics, serveOps } from './ops/ops-config.ts'
import { intFromEnv, rateFromEnv, tenantLimitsFromEnv } from './process-env.ts'
import { surviveDroppedPgConnections } from './pg-startup-guard.ts'

export interface GatewayProcessConfig {
  databaseUrl: string
  natsUrl: string
  natsUser?: string
  natsPassword?: string
  /** A `.creds` file (user JWT and nkey seed): how users of the account model connect. */
  natsCreds?: string
  /** Queue group shared by the gateways. */
  queue?: string
  /** Per-tenant fairness (see GatewayLimits); unset values take the gateway's defaults. */
  limits: GatewayLimits
}

/** The application name of a gateway's PostgreSQL sessions (pg_stat_activity). */
export const GATEWAY_APPLICATION_NAME = 'eventplane-gateway'

/**
 * Settings of a gateway process, from the environment: `EVENTPLANE_DATABASE_URL_INTENT_WRITER`,
 * else `EVENTPLANE_DATABASE_URL` when it already names the intent writer role, else that
 * (admin) URL with the intent writer role as user; `EVENTPLANE_NATS_URL` (default the local
 * server), `EVENTPLANE_NATS_CREDS` (a creds file) or `EVENTPLANE_NATS_USER` / `EVENTPLANE_NATS_PASSWORD`, `EVENTPLANE_GATEWAY_QUEUE`,
 * and the limits (GatewayLimits): per tenant `EVENTPLANE_GATEWAY_RATE` (requests/s or `unlimited`),
 * `_BURST`, `_BYTE_RATE` (bytes/s or `unlimited`), `_BURST_BYTES`, `_TENANT_MAX_IN_FLIGHT`, `_TENANT_MAX_BYTES`, `_TENANT_CONCURRENCY`; in total
 * `EVENTPLANE_GATEWAY_MAX_IN_FLIGHT`, `_MAX_BYTES`, `_CONCURRENCY`, `_REFUSAL_HOLD_MS`; and named tenants' own limits as
 * JSON in `EVENTPLANE_GATEWAY_TENANT_LIMITS` (`{"acme":{"ratePerSecond":500,"burst":1000}}`).
 */
export function resolveGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayProcessConfig {
  const base = env.EVENTPLANE_DATABASE_URL ?? DEFAULT_DATABASE_URL
  const databaseUrl =
    decodeURIComponent(new URL(base).username) === ROLES.intentWriter ? base : roleUrl(base, ROLES.intentWriter, env)
  return {
    databaseUrl,
    natsUrl: env.EVENTPLANE_NATS_URL ?? 'nats://127.0.0.1:4222',
    natsUser: env.EVENTPLANE_NATS_USER || undefined,
    natsPassword: env.EVENTPLANE_NATS_PASSWORD || undefined,
    natsCreds: env.EVENTPLANE_NATS_CREDS || undefined,
    queue: env.EVENTPLANE_GATEWAY_QUEUE || undefined,
    limits: resolveLimitsFromEnv(env),
  }
}

function resolveLimitsFromEnv(env: NodeJS.ProcessEnv): GatewayLimits {
  const defined = <T extends object>(o: T): Partial<T> =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
  const limits: GatewayLimits = defined({
    perTenant: defined({
      ratePerSecond: rateFromEnv(env, 'EVENTPLANE_GATEWAY_RATE'),
      burst: intFromEnv(env, 'EVENTPLANE_GATEWAY_BURST'),
      bytesPerSecond: rateFromEnv(env, 'EVENTPLANE_GATEWAY_BYTE_RATE'),
      burstBytes: intFromEnv(env, 'EVENTPLANE_GATEWAY_BURST_BYTES', 12),
      maxInFlight: intFromEnv(env, 'EVENTPLANE_GATEWAY_TENANT_MAX_IN_FLIGHT'),
      maxBytesInFlight: intFromEnv(env, 'EVENTPLANE_GATEWAY_TENANT_MAX_BYTES', 12),
      maxConcurrent: intFromEnv(env, 'EVENTPLANE_GATEWAY_TENANT_CONCURRENCY'),
    }),
    tenants: tenantLimitsFromEnv(env, 'EVENTPLANE_GATEWAY_TENANT_LIMITS'),
    maxInFlight: intFromEnv(env, 'EVENTPLANE_GATEWAY_MAX_IN_FLIGHT'),
    maxBytesInFlight: intFromEnv(env, 'EVENTPLANE_GATEWAY_MAX_BYTES', 12),
    concurrency: intFromEnv(env, 'EVENTPLANE_GATEWAY_CONCURRENCY'),
    refusalHoldMs:
      env.EVENTPLANE_GATEWAY_REFUSAL_HOLD_MS === '0' ? 0 : intFromEnv(env, 'EVENTPLANE_GATEWAY_REFUSAL_HOLD_MS'),
  })
  resolveLimits(limits) // refuse bad values at startup, naming the setting
  return limits
}

/**
 * Runs one intent gateway (no schema registry: envelopes and names are
 * validated, data is not checked against a schema) until SIGTERM or SIGINT,
 * when it stops taking requests and answers the ones it has. Returns the exit
 * code: 0 after a stop, 1 when the subscription failed, 2 for invalid
 * settings. Logs JSON lines to stdout (ids and error codes, never event data).
 */
export async function runGatewayProcess(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const logger = pino({ name: 'eventplane-gateway', level: env.EVENTPLANE_LOG_LEVEL ?? 'info' })
  let config: GatewayProcessConfig
  let auth: ReturnType<typeof natsAuth>
  let ops: OpsConfig
  try {
    config = resolveGatewayConfig(env)
    auth = natsAuth(config)
    ops = opsConfigFromEnv(env)
  } catch (e) {
    logger.error(errorFields(e), 'gateway configuration is invalid')
    return 2
  }
  logger.info(
    { database: redactUrl(config.databaseUrl), nats: config.natsUrl, limits: config.limits },
    'gateway process starting',
  )
  surviveDroppedPgConnections(logger)
  // One connection per request run at once (see GatewayLimits.concurrency), and two to spare.
  const concurrency = config.limits.concurrency ?? DEFAULT_GATEWAY_CONCURRENCY
  const sql = connectPg(config.databaseUrl, { applicationName: GATEWAY_APPLICATION_NAME, max: concurrency + 2 })
  const nc = await connect({
    servers: config.natsUrl,
    name: GATEWAY_APPLICATION_NAME,
    ...auth,
    waitOnFirstConnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
  })
  const metrics = processMetrics(ops)
  let opsServer: Awaited<ReturnType<typeof serveOps>>
  try {
    opsServer = await serveOps({ config: ops, metrics, pg: { postgres: sql }, nc, logger })
  } catch (e) {
    logger.error(errorFields(e), 'ops endpoints could not start')

    await nc.drain().catch(() => {})
    await sql.end({ timeout: 5 })
    return 1
  }
  let code = 0
  try {
    const gateway = await startGateway({
      nc,
      store: new PgEventStore(sql),
      logger,
      metrics,
      limits: config.limits,
      ...(config.queue ? { queue: config.queue } : {}),
    })
    const stop = (): void => void gateway.stop()
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
    await gateway.closed
    logger.info({}, 'gateway stopped')
  } catch (e) {
    logger.error(errorFields(e), 'gateway failed')
    code = 1
  }
  await opsServer?.close()
  await nc.drain().catch(() => {})
  await sql.end({ timeout: 5 })
  return code
}
