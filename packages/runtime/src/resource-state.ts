import type { RecordedEvent } from '@eventplane/core'
import { defineReducerProjection } from './projection/types.ts'

/** The fact types the mutate module emits; nothing else changes status or finalizers. */
export const RESOURCE_FACTS = {
  statusChanged: 'status_changed',
  finalizerAdded: 'finalizer_added',
  finalizerRemoved: 'finalizer_removed',
  deletionRequested: 'deletion_requested',
  deleted: 'deleted',
} as const

const RESOURCE_FACT_TYPES: readonly string[] = Object.values(RESOURCE_FACTS)

/** A resource's lifecycle as the log says it is. Finalizers are kept sorted, so equal states are equal JSON. */
export interface ResourceState {
  status: string | null
  reason: string | null
  finalizers: string[]
  deletionRequested: boolean
  deleted: boolean
}

export function initialResourceState(): ResourceState {
  return { status: null, reason: null, finalizers: [], deletionRequested: false, deleted: false }
}

/** Whether `e` is one of the mutate module's facts. */
export function isResourceFact(e: Pick<RecordedEvent, 'kind' | 'type'>): boolean {
  return e.kind === 'fact' && RESOURCE_FACT_TYPES.includes(e.type)
}

/**
 * The pure reducer over mutate facts (other events leave the state as it is).
 * After `deleted` nothing changes any more.
 */
export function reduceResource(state: ResourceState, e: RecordedEvent): ResourceState {
  if (!isResourceFact(e) || state.deleted) return state
  const data = e.data as Record<string, unknown>
  switch (e.type) {
    case RESOURCE_FACTS.statusChanged:
      return { ...state, status: String(data.status), reason: typeof data.reason === 'string' ? data.reason : null }
    case RESOURCE_FACTS.finalizerAdded: {
      const name = String(data.name)
      return state.finalizers.includes(name) ? state : { ...state, finalizers: [...state.finalizers, name].sort() }
    }
    case RESOURCE_FACTS.finalizerRemoved:
      return { ...state, finalizers: state.finalizers.filter((f) => f !== String(data.name)) }
    case RESOURCE_FACTS.deletionRequested:
      return { ...state, deletionRequested: true }
    case RESOURCE_FACTS.deleted:
      return { ...state, deleted: true }
    default:
      return state
  }
}

/** Folds a stream's events (oldest first) into its resource state. */
export function resourceStateOf(events: readonly RecordedEvent[]): ResourceState {
  return events.reduce(reduceResource, initialResourceState())
}

/** True when deletion was requested, no finalizer is left and `deleted` is not yet recorded. */
export function readyToDelete(state: ResourceState): boolean {
  return state.deletionRequested && state.finalizers.length === 0 && !state.deleted
}

/** Every stream's resource state, per tenant, keyed `<category>/<id>`. */
export const resourceStateProjection = defineReducerProjection<ResourceState>({
  name: 'resource_state',
  version: 1,
  initial: initialResourceState,
  apply: reduceResource,
  key: (e) => `${e.stream.category}/${e.stream.id}`,
  filter: { kinds: ['fact'], types: RESOURCE_FACT_TYPES },
})
