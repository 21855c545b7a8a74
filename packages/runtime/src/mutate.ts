import { Type } from '@sinclair/typebox'
import {
  type EventData,
  type ValidEnvelope,
  type EventFactory,
  type NewEventOptions,
  type SchemaRegistry,
  TenantMismatch,
  formatStream,
  validateName,
} from '@eventplane/core'
import { FinalizersPending } from './errors.ts'
import { RESOURCE_FACTS, type ResourceState, readyToDelete } from './resource-state.ts'

/** A stream to mutate; `tenant`, when given, must be the factory's. */
export interface MutateTarget {
  tenant?: string
  category: string
  id: string
}

const Token = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' })

/** The TypeBox schemas (v1) of the mutate facts. */
export const RESOURCE_FACT_SCHEMAS = {
  [RESOURCE_FACTS.statusChanged]: Type.Object(
    { status: Token, reason: Type.Optional(Type.String({ maxLength: 200 })) },
    { additionalProperties: false },
  ),
  [RESOURCE_FACTS.finalizerAdded]: Type.Object({ name: Token }, { additionalProperties: false }),
  [RESOURCE_FACTS.finalizerRemoved]: Type.Object({ name: Token }, { additionalProperties: false }),
  [RESOURCE_FACTS.deletionRequested]: Type.Object({}, { additionalProperties: false }),
  [RESOURCE_FACTS.deleted]: Type.Object({}, { additionalProperties: false }),
} as const

/** Registers the mutate fact schemas (v1) in `registry`. */
export function registerResourceSchemas(registry: SchemaRegistry): SchemaRegistry {
  for (const [type, schema] of Object.entries(RESOURCE_FACT_SCHEMAS)) registry.register(type, 1, schema)
  return registry
}

function target(factory: EventFactory, stream: MutateTarget): { category: string; id: string } {
  if (stream.tenant !== undefined && stream.tenant !== factory.tenant)
    throw new TenantMismatch(factory.tenant, stream.tenant)
  return { category: stream.category, id: stream.id }
}

/**
 * A `status_changed` fact. Status changes only through this function; the
 * resource state (see `reduceResource`) follows the log. Pass
 * `options.eventId` (e.g. a controller's deterministic id) to make a retry idempotent.
 */
export function setStatus(
  factory: EventFactory,
  stream: MutateTarget,
  status: string,
  reason?: string,
  options?: NewEventOptions,
): ValidEnvelope {
  validateName('type', status)
  const data: EventData = reason === undefined ? { status } : { status, reason }
  return factory.fact(target(factory, stream), RESOURCE_FACTS.statusChanged, data, options)
}

/** A `finalizer_added` fact: deletion will wait until a matching `removeFinalizer`. */
export function addFinalizer(
  factory: EventFactory,
  stream: MutateTarget,
  name: string,
  options?: NewEventOptions,
): ValidEnvelope {
  validateName('type', name)
  return factory.fact(target(factory, stream), RESOURCE_FACTS.finalizerAdded, { name }, options)
}

/** A `finalizer_removed` fact. */
export function removeFinalizer(
  factory: EventFactory,
  stream: MutateTarget,
  name: string,
  options?: NewEventOptions,
): ValidEnvelope {
  validateName('type', name)
  return factory.fact(target(factory, stream), RESOURCE_FACTS.finalizerRemoved, { name }, options)
}

/** A `deletion_requested` fact: the resource is deleted once its finalizers are gone (`completeDeletion`). */
export function requestDeletion(factory: EventFactory, stream: MutateTarget, options?: NewEventOptions): ValidEnvelope {
  return factory.fact(target(factory, stream), RESOURCE_FACTS.deletionRequested, {}, options)
}

/**
 * The `deleted` fact, only when `state` (the stream's current resource state)
 * has deletion requested and no finalizer left; else `FinalizersPending`.
 */
export function completeDeletion(
  factory: EventFactory,
  stream: MutateTarget,
  state: ResourceState,
  options?: NewEventOptions,
): ValidEnvelope {
  const t = target(factory, stream)
  if (!readyToDelete(state)) {
    throw new FinalizersPending(formatStream({ tenant: factory.tenant, ...t }), state.deleted ? [] : state.finalizers)
  }
  return factory.fact(t, RESOURCE_FACTS.deleted, {}, options)
}
