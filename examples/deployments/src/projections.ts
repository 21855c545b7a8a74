import type { RecordedEvent } from '@eventplane/core'
import {
  type ResourceState,
  defineReducerProjection,
  initialResourceState,
  isResourceFact,
  reduceResource,
} from '@eventplane/runtime'
import { DEPLOYMENT } from './schemas.ts'

/** One deployment as its tenant sees it. */
export interface DeploymentStatus extends ResourceState {
  image: string | null
  replicas: number | null
}

/** Per tenant and deployment id: image, current replicas, status, finalizers, deletion. */
export const deploymentStatusProjection = defineReducerProjection<DeploymentStatus>({
  name: 'deployment_status',
  version: 1,
  initial: () => ({ image: null, replicas: null, ...initialResourceState() }),
  apply(state, e) {
    if (e.type === 'scheduled') {
      const d = e.data as { image: string; replicas: number }
      return { ...state, image: d.image, replicas: d.replicas }
    }
    if (e.type === 'scaled') return { ...state, replicas: (e.data as { replicas: number }).replicas }
    if (!isResourceFact(e)) return state
    const { image, replicas, ...resource } = state
    return { image, replicas, ...reduceResource(resource, e) }
  },
  key: (e) => e.stream.id,
  filter: { kinds: ['fact'], categories: [DEPLOYMENT] },
})

/** One link of a correlation chain. */
export interface AuditEntry {
  event_id: string
  type: string
  kind: string
  causation_id: string | null
  stream: string
}

/** Per tenant and correlation id: every event of the chain in log order. */
export const auditProjection = defineReducerProjection<{ events: AuditEntry[] }>({
  name: 'audit',
  version: 1,
  initial: () => ({ events: [] }),
  apply: (state, e: RecordedEvent) => ({
    events: [
      ...state.events,
      {
        event_id: e.event_id,
        type: e.type,
        kind: e.kind,
        causation_id: e.causation_id,
        stream: `${e.stream.category}/${e.stream.id}`,
      },
    ],
  }),
  key: (e) => e.correlation_id,
})
