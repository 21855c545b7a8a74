export { ProjectionRunner } from './projection/runner.ts'
export type { ProjectionRunnerOptions } from './projection/runner.ts'
export { ProjectionEngine } from './projection/engine.ts'
export type { EngineOptions } from './projection/engine.ts'
export { rebuildProjection } from './projection/rebuild.ts'
export type { RebuildOptions, RebuildResult } from './projection/rebuild.ts'
export { projectionDigest } from './projection/digest.ts'
export type { ProjectionDigest } from './projection/digest.ts'
export {
  checkpointOf,
  defineReducerProjection,
  defineSqlProjection,
  isSqlProjection,
  matchesFilter,
} from './projection/types.ts'
export type {
  CommitInfo,
  Projection,
  ProjectionFilter,
  ProjectionProgress,
  ReducerProjection,
  SqlProjection,
} from './projection/types.ts'
export { ControllerRunner, RECONCILE_FAILED, isTransientError } from './controller/runner.ts'
export type { ControllerRunnerOptions } from './controller/runner.ts'
export { RECONCILES_CATEGORY, RECONCILE_STARTED, beginReconcile, reconcilesStream } from './controller/reconciles.ts'
export type { Controller, ReconcileContext } from './controller/types.ts'
export { FACT_ID_NAMESPACE, factId } from './controller/fact-ids.ts'
export { controllerPrincipal } from './controller/context.ts'
export { KeyedQueue } from './controller/keyed-queue.ts'
export {
  RESOURCE_FACT_SCHEMAS,
  addFinalizer,
  completeDeletion,
  registerResourceSchemas,
  removeFinalizer,
  requestDeletion,
  setStatus,
} from './mutate.ts'
export type { MutateTarget } from './mutate.ts'
export {
  RESOURCE_FACTS,
  initialResourceState,
  isResourceFact,
  readyToDelete,
  reduceResource,
  resourceStateOf,
  resourceStateProjection,
} from './resource-state.ts'
export type { ResourceState } from './resource-state.ts'
export { batchDeliveries } from './live-source.ts'
export type { LiveDelivery, LiveSource, LiveSubscription } from './live-source.ts'
export {
  CONTROLLER_CONSUMER_PREFIX,
  controllerConsumerName,
  controllerLiveSource,
  coveringFilter,
  jetStreamSource,
  projectionLiveSource,
} from './jetstream-source.ts'
export type { JetStreamSourceOptions } from './jetstream-source.ts'
export { CheckpointMoved, FinalizersPending, ProjectionFailed, ProjectionNotShadowable } from './errors.ts'
export { PROJECTOR_ROLE } from './roles.ts'
export { InvalidDomain, ReconcileFailedSchema, ReconcileStartedSchema, defineDomain, isDomain } from './domain.ts'
export type { Domain, DomainDefinition, DomainSchemas } from './domain.ts'
