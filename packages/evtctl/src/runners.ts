import { type SchemaRegistry, formatCheckpoint, isEventplaneError } from '@eventplane/core'
import { type EventplaneMetrics, type OpsServer, type StopWaits, natsFailure, serverWait } from '@eventplane/bus-nats'
import { PgEventStore, ROLES, type RoleName } from '@eventplane/store-pg'
import {
  type Controller,
  ControllerRunner,
  type Domain,
  PROJECTOR_ROLE,
  type Projection,
  ProjectionRunner,
  controllerLiveSource,
  projectionLiveSource,
} from '@eventplane/runtime'
import type { NatsConnection } from '@nats-io/transport-node'
import { processOps, serveProcessOps } from './process-ops.ts'
import { partFailure } from './services/connection-closed.ts'
import type { StartingParts } from './services/serve.ts'
import type { Session } from './session.ts'

/** The NATS connection name of the runtime's parts (one connection for all of a process's runners). */
const RUNTIME_CONNECTION = 'eventplane-runtime'

/** A started runner: stop it, or learn that it failed. */
export interface RunningPart {
  name: string
  /** How a failure line names it when it differs from `name` (`projection <name>`, `controller <name>`). */
  label?: string
  /** A human summary once started (e.g. the checkpoint it went live at). */
  detail: string
  /** Stops it; its waits for the server, if any, among `waits` (the process's stop: see StopWaits). */
  stop(waits?: StopWaits): Promise<void>
  /** Rejects when the part fails on its own; never resolves otherwise. */
  failed: Promise<never>
}

/**
 * Rejects when a runner's `closed` does (it resolves only after our own stop). Ended because the runtime's
 * NATS connection `nc` was closed for good (`bus.unavailable` with `nc` closed), the error says why the
 * server closed it: `bus.auth_failed` when its user was revoked (connectionClosedError), `what` leading.
 */
function failedWhen(closed: Promise<void>, what: string, nc: NatsConnection, identity?: string): Promise<never> {
  const failed = closed.then(
    () => new Promise<never>(() => {}),
    async (e: unknown) => {
      const why = await partFailure(nc, what, e, identity)
      throw why instanceof Error ? why : new Error(`${what} failed`)
    },
  )
  failed.catch(() => {})
  return failed
}

/** How long a failed start waits for its connection's close to settle (nats.js fails pending requests first). */
const CLOSE_SETTLE_MS = 1000

/**
 * `start`, a runner's; failed because the server closed `nc` for good (its user revoked while it started), the
 * error says why, `what` leading (see partFailure), as a failure after the start does: exit 4, not 3.
 */
async function started(start: Promise<void>, nc: NatsConnection, what: string, session: Session): Promise<void> {
  try {
    await start
  } catch (e) {
    // A request the close left pending fails as a bare nats.js error, before the connection counts as closed.
    const failure = isEventplaneError(e) ? e : natsFailure(e)
    if (isEventplaneError(failure, 'bus.unavailable') && !nc.isClosed())
      await serverWait(nc, nc.closed(), CLOSE_SETTLE_MS)
    const closed = await partFailure(nc, what, failure, session.natsIdentity)
    throw closed === failure ? e : closed
  }
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
  const nc = await session.serviceNats(RUNTIME_CONNECTION)
  const runner = new ProjectionRunner({
    projection,
    sql: session.pg(PROJECTOR_ROLE, 4),
    live: projectionLiveSource(nc, projection, { logger: session.log }),
    logger: session.log,
    ...(metrics ? { metrics } : {}),
  })
  session.onClose(() => runner.stop())
  // The runner waits for PostgreSQL (any start order); a signal meanwhile ends the wait, and `serve` then stops.
  await Promise.race([started(runner.start(), nc, `projection ${projection.name}`, session), aborted(session.signal)])
  return {
    name: projection.name,
    label: `projection ${projection.name}`,
    detail: `projection ${projection.name} v${projection.version} live at ${formatCheckpoint(runner.checkpoint)}`,
    stop: () => runner.stop(),
    failed: failedWhen(runner.closed, `projection ${projection.name}`, nc, session.natsIdentity),
  }
}

/**
 * Runs a controller from its durable consumer (`ctl_<name>`), appending
 * facts as `eventplane_fact_writer`, validated against the domain's registry.
 */
export async function startController(
  session: Session,
  controller: Controller,
  registry: SchemaRegistry,
  metrics?: EventplaneMetrics,
): Promise<RunningPart> {
  const nc = await session.serviceNats(RUNTIME_CONNECTION)
  const runner = new ControllerRunner({
    controller,
    store: new PgEventStore(session.pg(ROLES.factWriter, 4), { registry }),
    live: controllerLiveSource(nc, controller, { logger: session.log }),
    registry,
    logger: session.log,
    ...(metrics ? { metrics } : {}),
  })
  session.onClose(() => runner.stop())
  // As a projection's: a signal while its consumer is checked (a JetStream request, 5 s while the server stalls)
  // ends the wait, and `serve` then stops it; the start's own failure after the signal would fail the command.
  await Promise.race([started(runner.start(), nc, `controller ${controller.name}`, session), aborted(session.signal)])
  return {
    name: controller.name,
    label: `controller ${controller.name}`,
    detail: `controller ${controller.name} consuming`,
    stop: () => runner.stop(),
    failed: failedWhen(runner.closed, `controller ${controller.name}`, nc, session.natsIdentity),
  }
}

/** How failure lines name `domain`'s parts, in the order startDomain starts them. */
export function domainParts(domain: Domain): string[] {
  return [
    ...domain.controllers.map((c) => `controller ${c.name}`),
    ...domain.projections.map((p) => `projection ${p.name}`),
  ]
}

/**
 * Starts every controller and then every projection of `domain`; resolves once all are live. Each through
 * `starting` when given (`run`, `up`: a start failing because the connection closed names every part).
 */
export async function startDomain(
  session: Session,
  domain: Domain,
  metrics?: EventplaneMetrics,
  starting?: StartingParts,
): Promise<RunningPart[]> {
  const parts: RunningPart[] = []
  const registry = domain.registry()
  const start = <T>(label: string, f: () => Promise<T>): Promise<T> => (starting ? starting.start(label, f) : f())
  for (const c of domain.controllers)
    parts.push(await start(`controller ${c.name}`, () => startController(session, c, registry, metrics)))
  for (const p of domain.projections)
    parts.push(await start(`projection ${p.name}`, () => startProjection(session, p, metrics)))
  return parts
}

/**
 * The ops endpoints of a runner process (`evtctl subscribe <name>`, `evtctl run`), from
 * `EVENTPLANE_OPS_PORT`: metrics for the runners to count into, and a start
 * function that serves them with readiness of the runners' PostgreSQL pools
 * (`pgRoles`) and NATS connection. Off (no server) when the port is unset.
 */
export function runnerOps(session: Session): {
  metrics: EventplaneMetrics
  serve(...pgRoles: RoleName[]): Promise<OpsServer | undefined>
} {
  const ops = processOps(session)
  return {
    metrics: ops.metrics,
    async serve(...pgRoles) {
      return serveProcessOps(session, ops, {
        pg: Object.fromEntries(
          pgRoles.map((role) => [pgRoles.length === 1 ? 'postgres' : `postgres:${role}`, session.pg(role, 4)]),
        ),
        nc: await session.serviceNats(RUNTIME_CONNECTION),
      })
    },
  }
}

/** Resolves when `signal` aborts (never without one). */
export function aborted(signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return new Promise(() => {})
  if (signal.aborted) return Promise.resolve()
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
}
