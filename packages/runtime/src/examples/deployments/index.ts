export { DEPLOYMENT_FINALIZERS, deploymentsController } from './controller.ts'
export { auditProjection, deploymentStatusProjection } from './projections.ts'
export type { AuditEntry, DeploymentStatus } from './projections.ts'
export {
  DEPLOYMENT,
  DEPLOYMENT_FACTS,
  DEPLOYMENT_INTENTS,
  ReconcileFailedSchema,
  deploymentRegistry,
} from './schemas.ts'
