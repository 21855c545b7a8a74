import { defineDomain } from '@eventplane/runtime'
import { DEPLOYMENT_FINALIZERS, deploymentsController } from './controller.ts'
import { auditProjection, deploymentStatusProjection } from './projections.ts'
import { DEPLOYMENT, DEPLOYMENT_FACTS, DEPLOYMENT_INTENTS } from './schemas.ts'

/**
 * The example `deployments` domain: intents `create`/`scale`/`delete` on
 * `deployment` streams, the `deployments` controller, and the
 * `deployment_status` and `audit` projections. Run it with
 * `evtctl up --domain @eventplane/example-deployments`.
 */
export const domain = defineDomain({
  name: 'deployments',
  schemas: { ...DEPLOYMENT_INTENTS, ...DEPLOYMENT_FACTS },
  controllers: [deploymentsController],
  projections: [deploymentStatusProjection, auditProjection],
})
export default domain

export { DEPLOYMENT, DEPLOYMENT_FACTS, DEPLOYMENT_FINALIZERS, DEPLOYMENT_INTENTS }
export { auditProjection, deploymentStatusProjection, deploymentsController }
export type { AuditEntry, DeploymentStatus } from './projections.ts'
