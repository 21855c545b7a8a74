import type { SchemaRegistry } from '@eventplane/core'
import {
  DEFAULT_GATEWAY_CONCURRENCY,
  type EventplaneMetrics,
  GATEWAY_APPLICATION_NAME,
  type GatewayLimits,
  SUBMIT_SUBJECTS,
  resolveLimits,
  startGateway as startGatewayLibrary,
} from '@eventplane/bus-nats'
import type { NatsConnection } from '@nats-io/transport-node'
import { CliError } from '../cli-error.ts'
import { PgEventStore, ROLES, type Sql } from '@eventplane/store-pg'
import type { RunningPart } from '../runners.ts'
import { connectionClosedError } from './connection-closed.ts'
import type { Session } from '../session.ts'
import type { ResolvedSettings, SettingSpec } from '../service-settings.ts'

const int = (key: string, flag: string, env: string, help: string, maxDigits = 9): SettingSpec => ({
  key,
  flag,
  env,
  kind: { type: 'int', maxDigits },
  help,
})
const rate = (key: string, flag: string, env: string, help: string): SettingSpec => ({
  key,
  flag,
  env,
  kind: { type: 'rate' },
  help,
})

/** The gateway's settings: `evtctl gateway` flags, `EVENTPLANE_GATEWAY_*`, config file `gateway.*`. */
export const GATEWAY_SETTINGS: readonly SettingSpec[] = [
  {
    key: 'queue',
    flag: '--queue',
    env: 'EVENTPLANE_GATEWAY_QUEUE',
    kind: { type: 'name' },
    help: 'queue group shared by the gateways (default eventplane-gateway)',
  },
  rate('rate', '--rate', 'EVENTPLANE_GATEWAY_RATE', 'requests per second per tenant, or unlimited (default 100)'),
  int('burst', '--burst', 'EVENTPLANE_GATEWAY_BURST', 'request burst per tenant (default 100)'),
  rate(
    'byteRate',
    '--byte-rate',
    'EVENTPLANE_GATEWAY_BYTE_RATE',
    'bytes per second per tenant, or unlimited (default 1 MiB)',
  ),
  int('burstBytes', '--burst-bytes', 'EVENTPLANE_GATEWAY_BURST_BYTES', 'byte burst per tenant (default 1 MiB)', 12),
  int(
    'tenantMaxInFlight',
    '--tenant-max-in-flight',
    'EVENTPLANE_GATEWAY_TENANT_MAX_IN_FLIGHT',
    'requests one tenant may have held (default 64)',
  ),
  int(
    'tenantMaxBytes',
    '--tenant-max-bytes',
    'EVENTPLANE_GATEWAY_TENANT_MAX_BYTES',
    'request bytes one tenant may have held (default 4 MiB)',
    12,
  ),
  int(
    'tenantConcurrency',
    '--tenant-concurrency',
    'EVENTPLANE_GATEWAY_TENANT_CONCURRENCY',
    "one tenant's requests processed at once (default 2)",
  ),
  int('maxInFlight', '--max-in-flight', 'EVENTPLANE_GATEWAY_MAX_IN_FLIGHT', 'requests held in total (default 1024)'),
  int('maxBytes', '--max-bytes', 'EVENTPLANE_GATEWAY_MAX_BYTES', 'request bytes held in total (default 64 MiB)', 12),
  int('concurrency', '--concurrency', 'EVENTPLANE_GATEWAY_CONCURRENCY', 'requests processed at once (default 8)'),
  {
    key: 'refusalHoldMs',
    flag: '--refusal-hold-ms',
    env: 'EVENTPLANE_GATEWAY_REFUSAL_HOLD_MS',
    kind: { type: 'int', min: 0 },
    help: 'how long a refusal is held before it is answered (default 500)',
  },
  {
    key: 'tenantLimits',
    flag: '--tenant-limits',
    env: 'EVENTPLANE_GATEWAY_TENANT_LIMITS',
    kind: { type: 'tenantLimits' },
    help: 'named tenants\' own limits as JSON, e.g. {"acme":{"ratePerSecond":500}}',
  },
]

/** The gateway's limits from its settings, checked now (`cli.config` naming the bad one). */
export function gatewayLimits(settings: ResolvedSettings): GatewayLimits {
  const v = settings.values as Record<string, number | undefined> & {
    tenantLimits?: GatewayLimits['tenants']
  }
  const defined = <T extends object>(o: T): Partial<T> =>
    Object.fromEntries(Object.entries(o).filter(([, value]) => value !== undefined)) as Partial<T>
  const limits: GatewayLimits = defined({
    perTenant: defined({
      ratePerSecond: v.rate,
      burst: v.burst,
      bytesPerSecond: v.byteRate,
      burstBytes: v.burstBytes,
      maxInFlight: v.tenantMaxInFlight,
      maxBytesInFlight: v.tenantMaxBytes,
      maxConcurrent: v.tenantConcurrency,
    }),
    tenants: v.tenantLimits,
    maxInFlight: v.maxInFlight,
    maxBytesInFlight: v.maxBytes,
    concurrency: v.concurrency,
    refusalHoldMs: v.refusalHoldMs,
  })
  try {
    resolveLimits(limits)
  } catch (e) {
    throw new CliError('cli.config', (e as Error).message, { cause: e })
  }
  return limits
}

/**
 * Starts the intent gateway: appends as `eventplane_intent_writer` (PostgreSQL
 * sessions named `eventplane-gateway`, one per request run at once and two to
 * spare), validating every intent against `registry` (the domain's schemas).
 * With `metrics` the gateway counts into them (the ops endpoints, serveProcessOps).
 */
export async function startGateway(
  session: Session,
  settings: ResolvedSettings,
  registry: SchemaRegistry,
  metrics?: EventplaneMetrics,
): Promise<RunningPart & { sql: Sql; nc: NatsConnection }> {
  const limits = gatewayLimits(settings)
  const queue = settings.values.queue as string | undefined
  const concurrency = limits.concurrency ?? DEFAULT_GATEWAY_CONCURRENCY
  const sql = session.pg(ROLES.intentWriter, concurrency + 2, GATEWAY_APPLICATION_NAME)
  const nc = await session.serviceNats(GATEWAY_APPLICATION_NAME)
  const gateway = await startGatewayLibrary({
    nc,
    store: new PgEventStore(sql, { registry }),
    registry,
    logger: session.log,
    ...(metrics === undefined ? {} : { metrics }),
    limits,
    ...(queue === undefined ? {} : { queue }),
  })
  session.onClose(() => gateway.stop())
  // Closed without stop(): the server ended it, mostly by closing the connection for good (its user revoked).
  const failed = gateway.closed.then(async () => {
    throw await connectionClosedError(nc, 'the gateway subscription closed', { identity: session.natsIdentity })
  })
  failed.catch(() => {})
  return {
    name: 'gateway',
    detail: `gateway on ${SUBMIT_SUBJECTS}`,
    sql,
    nc,
    stop: (waits) => gateway.stop(waits),
    failed,
  }
}
