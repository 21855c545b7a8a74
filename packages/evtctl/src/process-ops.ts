import {
  type EventplaneMetrics,
  type OpsConfig,
  type OpsServer,
  type ServeOpsOptions,
  opsConfigFromEnv,
  processMetrics,
  serveOps,
} from '@eventplane/bus-nats'
import { CliError } from './cli-error.ts'
import type { Session } from './session.ts'

/** The process's ops endpoint settings (`EVENTPLANE_OPS_*`); `cli.config` naming the bad one. */
function opsSettings(session: Session): OpsConfig {
  try {
    return opsConfigFromEnv(session.io.env)
  } catch (e) {
    throw new CliError('cli.config', (e as Error).message, { cause: e })
  }
}

/** A service process's ops settings (`EVENTPLANE_OPS_*`; `port` overrides the port) and the metrics its parts count into. */
export function processOps(session: Session, port?: number): { config: OpsConfig; metrics: EventplaneMetrics } {
  const config = opsSettings(session)
  if (port !== undefined) config.port = port
  return { config, metrics: processMetrics(config) }
}

/**
 * Serves `/healthz`, `/readyz` and `/metrics` for a service process when its
 * ops port is set (undefined otherwise), ready when every PostgreSQL pool in
 * `targets.pg`, the NATS connection and each relay are; closed with the session.
 */
export async function serveProcessOps(
  session: Session,
  ops: { config: OpsConfig; metrics: EventplaneMetrics },
  targets: Pick<ServeOpsOptions, 'pg' | 'nc' | 'relays'>,
): Promise<OpsServer | undefined> {
  const server = await serveOps({ config: ops.config, metrics: ops.metrics, ...targets, logger: session.log })
  if (server) session.onClose(() => server.close())
  return server
}
