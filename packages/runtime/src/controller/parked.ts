import { type RecordedEvent, isEventplaneError } from '@eventplane/core'
import type { PgEventStore } from '@eventplane/store-pg'
import type { LiveDelivery } from '../live-source.ts'
import { controllerPrincipal, factoryFor } from './context.ts'
import { factId } from './fact-ids.ts'

/** The internal event that parks a poison event on its own stream. */
export const RECONCILE_FAILED = 'reconcile_failed'

/**
 * The `reconcile_failed` with which `controller` parked `event`, when the log holds one: the event of its
 * deterministic id, on the trigger's stream, kind `internal`, caused by the controller and by the trigger
 * (an event a tenant or an import put under that id is not one). Stored before a restore, or by a worker
 * whose terminate never reached NATS: the event is settled, and reconciling it again would only fail again.
 */
export async function storedPark(
  store: PgEventStore,
  controller: string,
  event: RecordedEvent,
): Promise<RecordedEvent | undefined> {
  const [stored] = await store.readEvents(event.tenant_id, [factId(controller, event.event_id, RECONCILE_FAILED)])
  return stored &&
    stored.kind === 'internal' &&
    stored.type === RECONCILE_FAILED &&
    stored.caused_by === controllerPrincipal(controller) &&
    stored.causation_id === event.event_id &&
    stored.stream.category === event.stream.category &&
    stored.stream.id === event.stream.id
    ? stored
    : undefined
}

/**
 * Which deliveries may find their event parked already, so that the normal path (a first delivery of an
 * event recorded while the runner runs) reads nothing. A stored park is another delivery's: one that
 * reached this consumer before (a redelivery, `deliveryCount` > 1: the terminate of a park was lost), or
 * one of another consumer or stream, which is delivered here for the first time only as an event recorded
 * before the runner opened its subscription (an export → import restores the log, parks included, before the
 * runners start, docs/deploying.md; a consumer made again while the runner reopens). So: every redelivery,
 * and a first delivery whose `recorded_at` is at or before the database's clock as read when the
 * subscription (re)opened (`opened`); the first delivery after that reads the clock (`PgEventStore.now`).
 */
export class ParkChecks {
  readonly #store: PgEventStore
  readonly #controller: string
  #opened: Promise<number> | undefined

  constructor(store: PgEventStore, controller: string) {
    this.#store = store
    this.#controller = controller
  }

  /** The subscription (re)opened: events recorded until now are checked on their first delivery too. */
  opened(): void {
    this.#opened = undefined
  }

  /** The event's stored park (`storedPark`) when its delivery may have one; undefined otherwise. */
  async stored(d: LiveDelivery): Promise<RecordedEvent | undefined> {
    if (d.deliveryCount === 1 && Date.parse(d.event.recorded_at) > (await this.#since())) return undefined
    return storedPark(this.#store, this.#controller, d.event)
  }

  #since(): Promise<number> {
    if (this.#opened === undefined) {
      const read = this.#store.now().then(Date.parse)
      this.#opened = read
      // A failed read (PostgreSQL unavailable) is read again by the next delivery.
      read.catch(() => {
        if (this.#opened === read) this.#opened = undefined
      })
    }
    return this.#opened
  }
}

/**
 * Appends the `reconcile_failed { controller, reason_code, attempts }` that parks `event` (deterministic
 * id). `'appended'` when it is stored now (or replayed: the same record, stored by an earlier park of this
 * deployment); `'kept'` when the store refused it with `store.idempotency_conflict` because a
 * `reconcile_failed` of this controller for this event is already stored and differs (another worker parked
 * it meanwhile, for another reason or after other attempts; or a restored one, `occurred_at` its trigger's
 * old `recorded_at`, imported after the runner looked): the stored one stands, and the event is parked all
 * the same. Anything else is thrown as it is.
 */
export async function appendPark(
  store: PgEventStore,
  controller: string,
  event: RecordedEvent,
  reasonCode: string,
  attempts: number,
): Promise<'appended' | 'kept'> {
  const failed = factoryFor(event, controller).internal(
    event.stream,
    RECONCILE_FAILED,
    { controller, reason_code: reasonCode, attempts },
    { eventId: factId(controller, event.event_id, RECONCILE_FAILED) },
  )
  try {
    await store.append({ tenant: event.tenant_id, ...event.stream }, [failed])
    return 'appended'
  } catch (e) {
    if (isEventplaneError(e, 'store.idempotency_conflict') && (await storedPark(store, controller, event)))
      return 'kept'
    throw e
  }
}
