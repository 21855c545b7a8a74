import { defineDomain, defineReducerProjection } from '@eventplane/runtime'

/** The domain of a services test: one reducer projection that fails on every event (a bug in a user's reducer). */
export default defineDomain({
  name: 'failing_projection',
  projections: [
    defineReducerProjection({
      name: 'failing_projection',
      version: 1,
      initial: () => 0,
      apply: () => {
        throw new Error('reducer bug')
      },
      key: (e) => e.stream.id,
    }),
  ],
})
