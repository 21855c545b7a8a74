import { Type } from '@sinclair/typebox'
import { SchemaRegistry } from '@eventplane/core'
import { registerResourceSchemas } from '../../mutate.ts'
import { RECONCILE_FAILED } from '../../controller/runner.ts'

/** The stream category of the example domain. */
export const DEPLOYMENT = 'deployment'

const Replicas = Type.Integer({ minimum: 0, maximum: 1000 })
const Image = Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9._/:@-]+$' })

/** Intents a client may submit on a `deployment` stream (schema version 1). */
export const DEPLOYMENT_INTENTS = {
  create: Type.Object({ image: Image, replicas: Replicas }, { additionalProperties: false }),
  scale: Type.Object({ replicas: Replicas }, { additionalProperties: false }),
  delete: Type.Object({}, { additionalProperties: false }),
} as const

/** Facts the `deployments` controller records besides the mutate facts. */
export const DEPLOYMENT_FACTS = {
  scheduled: Type.Object({ image: Image, replicas: Replicas }, { additionalProperties: false }),
  scaled: Type.Object({ replicas: Replicas, previous: Replicas }, { additionalProperties: false }),
} as const

export const ReconcileFailedSchema = Type.Object(
  {
    controller: Type.String({ minLength: 1, maxLength: 64 }),
    reason_code: Type.String({ minLength: 1, maxLength: 100 }),
    attempts: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
)

/** A registry with every schema of the example: intents, facts, mutate facts and `reconcile_failed`. */
export function deploymentRegistry(): SchemaRegistry {
  const registry = new SchemaRegistry()
  for (const [type, schema] of Object.entries({ ...DEPLOYMENT_INTENTS, ...DEPLOYMENT_FACTS }))
    registry.register(type, 1, schema)
  registerResourceSchemas(registry)
  registry.register(RECONCILE_FAILED, 1, ReconcileFailedSchema)
  return registry
}
