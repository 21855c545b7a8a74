import { Type } from '@sinclair/typebox'
import { defineDomain } from '@eventplane/runtime'

/** Any JSON object: the fault tests look at delivery, not at data. */
const Anything = Type.Object({}, { additionalProperties: true })

/** The domain the fault tests' gateways serve (`evtctl gateway --domain`): the intent types their clients send. */
export default defineDomain({
  name: 'faults',
  schemas: { scaled: Anything, steady: Anything, flooded: Anything },
})
