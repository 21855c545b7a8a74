// Plain JavaScript: each gateway child loads it (`--domain`), and a TypeScript domain makes every such start
// register tsx (about 0.5 s of CPU more each).
import { Type } from '@sinclair/typebox'
import { defineDomain } from '@eventplane/runtime'

/** Any JSON object: the fault tests look at delivery, not at data. */
const Anything = Type.Object({}, { additionalProperties: true })

/** The domain the fault tests' gateways serve (`evtctl gateway --domain`): the intent types their clients send. */
export default defineDomain({
  name: 'faults',
  schemas: { scaled: Anything, steady: Anything, flooded: Anything },
})
