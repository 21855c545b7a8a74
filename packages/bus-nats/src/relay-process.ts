import { DEFAULT_DATABASE_URL, ROLES, connectPg, redactUrl, roleUrl } from '@eventplane/store-pg'
import { connect } from '@nats-io/transport-node'
import { natsAuth } from './nats-auth.ts'
import { pino } from 'pino'
import { errorFields } from './logger.ts'
import { type OpsConfig, opsConfigFromEnv, processMetrics, serveOps } from './ops/ops-config.ts'
import { boolFromEnv, intFromEnv } from './process-env.ts'
import { surviveDroppedPgConnections } from './pg-startup-guard.ts'
import { Relay } from './relay.ts'

export interface RelayProcessConfig {
  databaseUrl: string
  natsUrl: string
  natsUser?: string
  natsPassword?: string
  /** A `.creds` file (user JWT and nkey seed): how users of the account model connect. */
  natsCreds?: string
  name: string
  batchSize?: number
  maxInFlight?: number
  pollIntervalMs?: number
  duplicateWindowMs?: number
  /** The stream's size limits (see ensureStream). */
  streamMaxBytes?: number
  streamMaxMsgSize?: number
  /** The transaction guard's bound (ms) and whether it terminates (see TransactionGuard). */
  stuckAfterMs?: number
  terminateStuck?: boolean
}

/**
 * Settings of a relay process, from the environment: `EVENTPLANE_DATABASE_URL_RELAY`,
 * else `EVENTPLANE_DATABASE_URL` when it already names the relay role, else that
 * (admin) URL with the relay role as user; `EVENTPLANE_NATS_URL` (default the
 * local server), `EVENTPLANE_NATS_CREDS` (a creds file) or `EVENTPLANE_NATS_USER` / `EVENTPLANE_NATS_PASSWORD`, `EVENTPLANE_RELAY_NAME`,
 * and the tuning knobs `EVENTPLANE_RELAY_BATCH_SIZE`, `EVENTPLANE_RELAY_MAX_IN_FLIGHT`,
 * `EVENTPLANE_RELAY_POLL_MS`, `EVENTPLANE_RELAY_DUPLICATE_WINDOW_MS` (the stream's duplicate window, see ensureStream),
 * the stream's limits `EVENTPLANE_STREAM_MAX_BYTES` and `EVENTPLANE_STREAM_MAX_MSG_SIZE`;
 * the transaction guard's `EVENTPLANE_RELAY_STUCK_AFTER_MS` (default 30000) and
 * `EVENTPLANE_RELAY_TERMINATE_STUCK` (`true` to terminate stuck transactions, not only report them).
 */
export function resolveRelayConfig(env: NodeJS.ProcessEnv = process.env): RelayProcessConfig {
  const base = env.EVENTPLANE_DATABASE_URL ?? DEFAULT_DATABASE_URL
  const databaseUrl =
    decodeURIComponent(new URL(base).username) === ROLES.relay ? base : roleUrl(base, ROLES.relay, env)
  return {
    databaseUrl,
    natsUrl: env.EVENTPLANE_NATS_URL ?? 'nats://127.0.0.1:4222',
    natsUser: env.EVENTPLANE_NATS_USER || undefined,
    natsPassword: env.EVENTPLANE_NATS_PASSWORD || undefined,
    natsCreds: env.EVENTPLANE_NATS_CREDS || undefined,
    name: env.EVENTPLANE_RELAY_NAME || 'default',
    batchSize: intFromEnv(env, 'EVENTPLANE_RELAY_BATCH_SIZE'),
    maxInFlight: intFromEnv(env, 'EVENTPLANE_RELAY_MAX_IN_FLIGHT'),
    pollIntervalMs: intFromEnv(env, 'EVENTPLANE_RELAY_POLL_MS'),
    duplicateWindowMs: intFromEnv(env, 'EVENTPLANE_RELAY_DUPLICATE_WINDOW_MS'),
    streamMaxBytes: intFromEnv(env, 'EVENTPLANE_STREAM_MAX_BYTES', 15),
    streamMaxMsgSize: intFromEnv(env, 'EVENTPLANE_STREAM_MAX_MSG_SIZE'),
    stuckAfterMs: intFromEnv(env, 'EVENTPLANE_RELAY_STUCK_AFTER_MS', 9, 1000),
    terminateStuck: boolFromEnv(env, 'EVENTPLANE_RELAY_TERMINATE_STUCK'),
  }
}

/**
 * Runs one relay until SIGTERM or SIGINT (graceful stop) and returns the exit
 * code: 0 after a stop, 1 after a fatal error, 2 for invalid settings. Logs
 * JSON lines to stdout (ids, types, positions; never event data).
 */
export async function runRelayProcess(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const logger = pino({ name: 'eventplane-relay', level: env.EVENTPLANE_LOG_LEVEL ?? 'info' })
  let config: RelayProcessConfig
  let auth: ReturnType<typeof natsAuth>
  let ops: OpsConfig
  try {
    config = resolveRelayConfig(env)
    auth = natsAuth(config)
    ops = opsConfigFromEnv(env)
  } catch (e) {
    logger.error(errorFields(e), 'relay configuration is invalid')
    return 2
  }
  logger.info(
    { database: redactUrl(config.databaseUrl), nats: config.natsUrl, relay: config.name },
    'relay process starting',
  )
  surviveDroppedPgConnections(logger)
  const sql = connectPg(config.databaseUrl, { max: 4, applicationName: `eventplane-relay:${config.name}` })
  const nc = await connect({
    servers: config.natsUrl,
    name: `eventplane-relay:${config.name}`,
    ...auth,
    waitOnFirstConnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
  })
  const metrics = processMetrics(ops)
  const relay = new Relay({
    sql,
    nc,
    name: config.name,
    logger,
    metrics,
    batchSize: config.batchSize,
    maxInFlight: config.maxInFlight,
    pollIntervalMs: config.pollIntervalMs,
    stream: {
      ...(config.duplicateWindowMs === undefined ? {} : { duplicateWindowMs: config.duplicateWindowMs }),
      ...(config.streamMaxBytes === undefined ? {} : { maxBytes: config.streamMaxBytes }),
      ...(config.streamMaxMsgSize === undefined ? {} : { maxMsgSize: config.streamMaxMsgSize }),
    },
    guard: { stuckAfterMs: config.stuckAfterMs, terminate: config.terminateStuck },
  })
  const stop = (): void => void relay.stop()
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
  relay.start()
  let opsServer: Awaited<ReturnType<typeof serveOps>>
  try {
    opsServer = await serveOps({ config: ops, metrics, pg: { postgres: sql }, nc, relays: [relay], logger })
  } catch (e) {
    logger.error(errorFields(e), 'ops endpoints could not start')
    await relay.stop()
    await nc.drain().catch(() => {})
    await sql.end({ timeout: 5 })
    return 1
  }
  let code = 0
  try {
    await relay.closed
  } catch (e) {
    logger.error(errorFields(e), 'relay failed')
    code = 1
  }
  await opsServer?.close()
  await nc.drain().catch(() => {})
  await sql.end({ timeout: 5 })
  return code
}
