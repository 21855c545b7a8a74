import { EventFactory, type RecordedEvent, isEventplaneError } from '@eventplane/core'
import type { PgEventStore } from '@eventplane/store-pg'
import { controllerPrincipal } from './context.ts'
import { factId } from './fact-ids.ts'

/** The internal event a runner records before it reconciles a redelivered event: `{ controller, attempt }`. */
export const RECONCILE_STARTED = 'reconcile_started'

/**
 * The category of the runtime's own streams of `reconcile_started` events, one stream per controller and
 * trigger (`<controller>:<trigger event id>`) in the trigger's tenant. Reserved (core's
 * RESERVED_CATEGORY_PREFIX): no tenant may write it, no controller may list it; only the system factory
 * below builds its events.
 */
export const RECONCILES_CATEGORY = 'eventplane_reconciles'

/** Where the reconciles `controller` began on redeliveries of `event` are recorded. */
export function reconcilesStream(controller: string, event: RecordedEvent) {
  return { tenant: event.tenant_id, category: RECONCILES_CATEGORY, id: `${controller}:${event.event_id}` }
}

/**
 * Records that `controller` begins reconciling a redelivery of `event`, and returns how many reconciles it
 * had begun on earlier redeliveries of this copy of the log: each of them ended without an ack or a park
 * this runtime saw (the worker died or was stopped during it), so the count is what `maxDeliveries`
 * bounds. At `max` or more nothing is recorded (the caller parks the event). PostgreSQL errors are thrown
 * as they are (an unavailable store included: nothing was recorded, the caller waits and calls again).
 *
 * The record is the append of the next `reconcile_started` (id UUIDv5 of controller, trigger and
 * number; `occurred_at` the trigger's `recorded_at`) at that exact version: two workers holding the same
 * redelivery write the same event, and the store replays the second append.
 *
 * Counted are only the records whose `occurred_at` is the trigger's `recorded_at` as delivered now. An
 * export → import renews `recorded_at` and brings the old log's records along: those are reconciles of
 * another deployment (most of them finished, acknowledged there), and counting them would park a restored
 * intent at its first redelivery here. They still number the new records (which follow them).
 */
export async function beginReconcile(
  store: PgEventStore,
  controller: string,
  event: RecordedEvent,
  max: number,
): Promise<number> {
  const ref = reconcilesStream(controller, event)
  const at = new Date(event.recorded_at)
  const factory = EventFactory.systemFromEvent(event, { causedBy: controllerPrincipal(controller), now: () => at })
  const principal = controllerPrincipal(controller)
  for (;;) {
    const events = await store.readStreamToArray(ref)
    // Only the runtime's own records count: an intent a tenant appended here is not one (its kind says so).
    const own = events.filter((e) => e.kind === 'internal' && e.type === RECONCILE_STARTED && e.caused_by === principal)
    const earlier = own.filter((e) => Date.parse(e.occurred_at) === at.getTime()).length
    if (earlier >= max) return earlier
    const attempt = own.length + 1
    const started = factory.internal(
      { category: ref.category, id: ref.id },
      RECONCILE_STARTED,
      { controller, attempt },
      { eventId: factId(controller, event.event_id, `${RECONCILE_STARTED}/${attempt}`) },
    )
    try {
      await store.append(ref, [started], { expectedVersion: events.length === 0 ? 'no_stream' : events.length })
      return earlier
    } catch (e) {
      // Another worker recorded a later one first: count again.
      if (!(isEventplaneError(e) && e.code === 'store.wrong_expected_version')) throw e
    }
  }
}
