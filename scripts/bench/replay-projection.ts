import type { RecordedEvent } from '@eventplane/core'
import { defineReducerProjection } from '@eventplane/runtime'

/** A typical per-stream reducer: counts, last replicas, last version. */
export const perStream = defineReducerProjection({
  name: 'bench_per_stream',
  version: 1,
  initial: () => ({ events: 0, replicas: 0, version: 0 }),
  apply: (s, e: RecordedEvent) => ({
    events: s.events + 1,
    replicas: Number(e.data.replicas ?? s.replicas),
    version: e.stream_version,
  }),
  key: (e) => e.stream.id,
})
