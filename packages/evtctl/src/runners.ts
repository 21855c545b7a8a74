import { formatCheckpoint } from '@eventplane/core'
import {
  type EventplaneMetrics,
  type OpsServer,
  opsConfigFromEnv,
  processMetrics,
  serveOps,
} from '@eventplane/bus-nats'
import { PgEventStore, ROLES, type RoleName } from '@eventplane/store-pg'
import {
  type Controller,
  ControllerRunner,
  PROJECTOR_ROLE,
  type Projection,
  ProjectionRunner,
  controllerLiveSource,
  projectionLiveSource,
} from '@eventplane/runtime'
import { domainRegistry } from './domain.ts'
import type { Session } from './session.ts'

/** A started runner: stop it, or learn that it failed. */
export interface RunningPart {
  name: string
  /** A human summary once started (e.g. the checkpoint it went live at). */
  detail: string
  stop(): Promise<void>
  /** Rejects when the part fails on its own; never resolves otherwise. */
  failed: Promise<never>
}

function failedWhen(closed: Promise<void>, what: string): Promise<never> {
  const failed = closed.then(
    () => new Promise<never>(() => {}),
    (e: unknown) => {
      throw e instanceof Error ? e : new Error(`${what} failed`)
    },
  )
  failed.catch(() => {})
  return failed
}

/**
 * Runs a projection: catch up from PostgreSQL as `eventplane_projector`,
 * then live from its durable JetStream consumer (`proj_<name>`). Resolves
 * once it is live.
 */
export async function startProjection(
  session: Session,
  projection: Projection,
  metrics?: EventplaneMetrics,
): Promise<RunningPart> {
  const nc = await session.nats()
  const runner = new ProjectionRunner({
    projection,
    sql: session.pg(PROJECTOR_ROLE, 4),
    live: projectionLiveSource(nc, projection, { logger: session.log }),
    logger: session.log,
    ...(metrics ? { metrics } : {}),
  })
  session.onClose(() => runner.stop())
  await runner.start()
  return {
    name: projection.name,
    detail: `projection ${projection.name} v${projection.version} live at ${formatCheckpoint(runner.checkpoint)}`,
    stop: () => runner.stop(),
    failed: failedWhen(runner.closed, `projection ${projection.name}`),
  }
}

/**
 * Runs a controller from its durable consumer (`ctl_<name>`), appending
 * facts as `eventplane_fact_writer`, validated against the domain's registry.
 */
export async function startController(
  session: Session,
  controller: Controller,
  metrics?: EventplaneMetrics,
): Promise<RunningPart> {
  const nc = await session.nats()
  const registry = domainRegistry()
  const runner = new ControllerRunner({
    controller,
    store: new PgEventStore(session.pg(ROLES.factWriter, 4), { registry }),
    live: controllerLiveSource(nc, controller, { logger: session.log }),
    registry,
    logger: session.log,
    ...(metrics ? { metrics } : {}),
  })
  session.onClose(() => runner.stop())
  await runner.start()
  return {
    name: controller.name,
    detail: `controller ${controller.name} consuming`,
    stop: () => runner.stop(),
    failed: failedWhen(runner.closed, `controller ${controller.name}`),
  }
}

/**
 * The ops endpoints of a runner process (`evtctl subscribe <name>`), from
 * `EVENTPLANE_OPS_PORT`: metrics for the runners to count into, and a start
 * function that serves them with readiness of the runner's PostgreSQL pool
 * (`pgRole`) and NATS connection. Off (no server) when the port is unset.
 */
export function runnerOps(session: Session): {
  metrics: EventplaneMetrics
  serve(pgRole: RoleName): Promise<OpsServer | undefined>
} {
  const config = opsConfigFromEnv(session.io.env)
  const metrics = processMetrics(config)
  return {
    metrics,
    async serve(pgRole) {
      const server = await serveOps({
        config,
        metrics,
        pg: { postgres: session.pg(pgRole) },
        nc: await session.nats(),
        logger: session.log,
      })
      if (server) session.onClose(() => server.close())
      return server
    },
  }
}

/** Resolves when `signal` aborts (never without one). */
export function aborted(signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return new Promise(() => {})
  if (signal.aborted) return Promise.resolve()
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
}
