import { EventplaneError, type SchemaRegistry } from '@eventplane/core'
import {
  type Controller,
  type Projection,
  auditProjection,
  deploymentRegistry,
  deploymentStatusProjection,
  deploymentsController,
} from '@eventplane/runtime'

/**
 * The example `deployments` domain evtctl can run by name: its projections,
 * its controller and its schema registry (the gateway of `up` validates
 * intents against it).
 */
export const PROJECTIONS: ReadonlyMap<string, Projection> = new Map<string, Projection>(
  [deploymentStatusProjection as Projection, auditProjection as Projection].map((p) => [p.name, p]),
)
/** The example domain's controllers by name. */
export const CONTROLLERS: ReadonlyMap<string, Controller> = new Map([
  [deploymentsController.name, deploymentsController],
])

/** The example domain's schema registry. */
export function domainRegistry(): SchemaRegistry {
  return deploymentRegistry()
}

/** A projection by name; an unknown name is `runtime.unknown_projection` (exit 1) naming the known ones. */
export function findProjection(name: string): Projection {
  const projection = PROJECTIONS.get(name)
  if (projection === undefined) {
    throw new EventplaneError(
      'runtime.unknown_projection',
      `unknown projection ${JSON.stringify(name)}; known: ${[...PROJECTIONS.keys()].join(', ')}`,
    )
  }
  return projection
}

/** What `subscribe <name>` runs: a projection or a controller. */
export type Runnable = { kind: 'projection'; projection: Projection } | { kind: 'controller'; controller: Controller }

/** A projection or controller by name; unknown names are `runtime.unknown_projection` (exit 1). */
export function findRunnable(name: string): Runnable {
  const projection = PROJECTIONS.get(name)
  if (projection) return { kind: 'projection', projection }
  const controller = CONTROLLERS.get(name)
  if (controller) return { kind: 'controller', controller }
  const known = [...PROJECTIONS.keys(), ...CONTROLLERS.keys()].join(', ')
  throw new EventplaneError(
    'runtime.unknown_projection',
    `no projection or controller named ${JSON.stringify(name)}; known: ${known}`,
  )
}
