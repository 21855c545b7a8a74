import { Kind, type TSchema, Type } from '@sinclair/typebox'
import { EventplaneError, SchemaRegistry, validateName } from '@eventplane/core'
import { RECONCILE_STARTED } from './controller/reconciles.ts'
import { RECONCILE_FAILED } from './controller/runner.ts'
import type { Controller } from './controller/types.ts'
import { registerResourceSchemas } from './mutate.ts'
import { checkProjection } from './projection/types.ts'
import type { Projection } from './projection/types.ts'

/**
 * Event schemas by type: a TypeBox schema (version 1) or schemas by version,
 * e.g. `{ create: Type.Object(…), scale: { 1: ScaleV1, 2: ScaleV2 } }`.
 */
export type DomainSchemas = Readonly<Record<string, TSchema | Readonly<Record<number, TSchema>>>>

/** What a domain is made of: its event schemas, its controllers and its projections. */
export interface DomainDefinition {
  /** The domain's name (letters, digits, `_` and `-`). */
  name: string
  /** Schemas of the intents and facts the domain records; the mutate facts, `reconcile_failed` and `reconcile_started` are added. */
  schemas?: DomainSchemas
  controllers?: readonly Controller[]
  projections?: readonly Projection[]
}

/** A checked, frozen domain: what `evtctl --domain <module>` loads and runs. */
export interface Domain {
  readonly name: string
  readonly controllers: readonly Controller[]
  readonly projections: readonly Projection[]
  /** A new registry with the domain's schemas, the mutate facts (v1), `reconcile_failed` and `reconcile_started` (v1). */
  registry(): SchemaRegistry
  /** The projection or controller named `name` (names are unique across both). */
  find(
    name: string,
  ): { kind: 'projection'; projection: Projection } | { kind: 'controller'; controller: Controller } | undefined
}

/** The data of the `reconcile_failed` internal event a controller runner records for a parked event. */
export const ReconcileFailedSchema = Type.Object(
  {
    controller: Type.String({ minLength: 1, maxLength: 64 }),
    reason_code: Type.String({ minLength: 1, maxLength: 100 }),
    attempts: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
)

/** The data of the `reconcile_started` internal event a controller runner records before reconciling a redelivery. */
export const ReconcileStartedSchema = Type.Object(
  {
    controller: Type.String({ minLength: 1, maxLength: 64 }),
    attempt: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
)

/** Marks values built by defineDomain; a global symbol, so two copies of this package agree. */
const DOMAIN_BRAND = Symbol.for('eventplane.domain')

/** A definition that is not a valid domain; the message names the first problem. */
export class InvalidDomain extends EventplaneError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('runtime.invalid_domain', message, options)
  }
}

/** True for a domain built by {@link defineDomain} (by this or another copy of the package). */
export function isDomain(value: unknown): value is Domain {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[DOMAIN_BRAND] === true
}

const isSchema = (value: unknown): value is TSchema =>
  typeof value === 'object' && value !== null && Kind in (value as object)

/** The `(type, version, schema)` triples of `schemas`, checked for shape. */
function schemaEntries(domain: string, schemas: DomainSchemas): [string, number, TSchema][] {
  const out: [string, number, TSchema][] = []
  for (const [type, value] of Object.entries(schemas)) {
    if (isSchema(value)) {
      out.push([type, 1, value])
      continue
    }
    if (typeof value !== 'object' || value === null)
      throw new InvalidDomain(`domain ${domain}: schema of ${JSON.stringify(type)} is not a TypeBox schema`)
    for (const [version, schema] of Object.entries(value)) {
      if (!/^[1-9]\d{0,5}$/.test(version) || !isSchema(schema))
        throw new InvalidDomain(
          `domain ${domain}: schemas of ${JSON.stringify(type)} must be a TypeBox schema or { <version>: schema }`,
        )
      out.push([type, Number(version), schema])
    }
  }
  return out
}

/**
 * Checks a domain and freezes it: a valid name, schemas that compile (and do
 * not redefine the mutate facts, `reconcile_failed` or `reconcile_started`), controllers and
 * projections with valid, distinct names. Anything wrong throws
 * `runtime.invalid_domain` naming it.
 */
export function defineDomain(definition: DomainDefinition): Domain {
  if (typeof definition !== 'object' || definition === null)
    throw new InvalidDomain('a domain definition must be an object')
  const name = definition.name
  if (typeof name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(name))
    throw new InvalidDomain('a domain needs a name of 1 to 64 ASCII letters, digits, _ and -')
  const controllers = Object.freeze([...(definition.controllers ?? [])])
  const projections = Object.freeze([...(definition.projections ?? [])])
  const seen = new Set<string>()
  const claim = (what: string, value: unknown): void => {
    if (typeof value !== 'string') throw new InvalidDomain(`domain ${name}: a ${what} has no name`)
    if (seen.has(value)) throw new InvalidDomain(`domain ${name}: two projections or controllers named ${value}`)
    seen.add(value)
  }
  for (const c of controllers) {
    claim('controller', c?.name)
    if (typeof c.reconcile !== 'function' || !Array.isArray(c.categories))
      throw new InvalidDomain(`domain ${name}: controller ${c.name} needs categories and a reconcile function`)
    try {
      validateName('controller', c.name)
      for (const category of c.categories) validateName('category', category)
    } catch (e) {
      throw new InvalidDomain(`domain ${name}: controller ${c.name}: ${(e as Error).message}`, { cause: e })
    }
  }
  for (const p of projections) {
    claim('projection', p?.name)
    try {
      checkProjection(p)
    } catch (e) {
      throw new InvalidDomain(`domain ${name}: projection ${p.name}: ${(e as Error).message}`, { cause: e })
    }
  }
  const entries = schemaEntries(name, definition.schemas ?? {})
  const registry = (): SchemaRegistry => {
    const r = registerResourceSchemas(new SchemaRegistry())
      .register(RECONCILE_FAILED, 1, ReconcileFailedSchema)
      .register(RECONCILE_STARTED, 1, ReconcileStartedSchema)
    for (const [type, version, schema] of entries) r.register(type, version, schema)
    return r
  }
  try {
    registry() // compiles every schema once, so a bad one fails here and not in a running process
  } catch (e) {
    throw new InvalidDomain(`domain ${name}: ${(e as Error).message}`, { cause: e })
  }
  const byName = new Map<string, ReturnType<Domain['find']>>([
    ...projections.map((projection) => [projection.name, { kind: 'projection' as const, projection }] as const),
    ...controllers.map((controller) => [controller.name, { kind: 'controller' as const, controller }] as const),
  ])
  return Object.freeze({
    [DOMAIN_BRAND]: true,
    name,
    controllers,
    projections,
    registry,
    find: (n: string) => byName.get(n),
  })
}
