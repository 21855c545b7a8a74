import {
  type ValidEnvelope,
  type RecordedEvent,
  type SchemaRegistry,
  EventFactory,
  InvalidEnvelope,
} from '@eventplane/core'
import type { PgEventStore } from '@eventplane/store-pg'
import type { Logger } from '@eventplane/bus-nats'
import { factId } from './fact-ids.ts'
import { appendKeepingStoredInstants } from './restored-facts.ts'
import type { ReconcileContext } from './types.ts'

export interface ContextDeps {
  controller: string
  store: PgEventStore
  registry?: SchemaRegistry
  log: Logger
}

/** The principal a controller's facts carry in `caused_by`. */
export const controllerPrincipal = (name: string): string => `controller:${name}`

/** A factory for events caused by `event`, deterministic in everything but the caller's ids. */
export function factoryFor(event: RecordedEvent, controller: string, registry?: SchemaRegistry): EventFactory {
  const at = new Date(event.recorded_at)
  return EventFactory.fromEvent(event, {
    causedBy: controllerPrincipal(controller),
    now: () => at,
    ...(registry ? { registry } : {}),
  })
}

export function createContext(
  event: RecordedEvent,
  attempt: number,
  signal: AbortSignal,
  deps: ContextDeps,
): ReconcileContext {
  const factory = factoryFor(event, deps.controller, deps.registry)
  const own = { tenant: event.tenant_id, category: event.stream.category, id: event.stream.id }
  const id = (step: string): string => factId(deps.controller, event.event_id, step)
  return {
    event,
    factory,
    attempt,
    signal,
    log: deps.log,
    id,
    fact(type, data, options = {}) {
      return factory.fact(options.stream ?? event.stream, type, data, {
        eventId: id(options.step ?? type),
        ...(options.schemaVersion ? { schemaVersion: options.schemaVersion } : {}),
      })
    },
    async emit(...events: ValidEnvelope[]) {
      const byStream = new Map<string, ValidEnvelope[]>()
      for (const e of events) {
        if (e.kind === 'intent')
          throw new InvalidEnvelope('a controller emits facts and internal events, never intents')
        const key = `${e.stream.category}/${e.stream.id}`
        byStream.set(key, [...(byStream.get(key) ?? []), e])
      }
      for (const group of byStream.values()) {
        signal.throwIfAborted()
        const { category, id: streamId } = group[0]!.stream
        const ref = { tenant: event.tenant_id, category, id: streamId }
        const { restored } = await appendKeepingStoredInstants(deps.store, ref, group)
        if (restored)
          deps.log.info(
            {
              controller: deps.controller,
              event_id: event.event_id,
              facts: group.length,
              event: 'facts.already_stored',
            },
            'facts already stored with an earlier occurred_at (a restored log): kept, nothing appended',
          )
      }
    },
    history() {
      return deps.store.readStreamToArray(own, { maxCount: event.stream_version, signal })
    },
    readStream(stream) {
      return deps.store.readStreamToArray(stream ? { tenant: event.tenant_id, ...stream } : own, { signal })
    },
  }
}
