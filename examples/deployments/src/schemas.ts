import { Type } from '@sinclair/typebox'

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
