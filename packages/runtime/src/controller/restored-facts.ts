import { type StreamRef, type ValidEnvelope, isEventplaneError, validateEnvelope } from '@eventplane/core'
import type { PgEventStore } from '@eventplane/store-pg'

/**
 * Appends `events` (one stream's facts or internal events a controller derived from one trigger) and, when the store refuses them with `store.idempotency_conflict` while every one of them is
 * already stored, appends them once more with the stored copies' `occurred_at`.
 *
 * Why: a controller's fact takes its `occurred_at` from its trigger's `recorded_at`, which the store
 * assigns and an export → import renews (it is not in the hash chain's canonical form; `occurred_at` is).
 * After a restore the controller gets every trigger again and builds the same facts, under the same
 * deterministic ids, but for that instant. The second append goes through the store's own idempotency
 * check unchanged: identical in everything else, it is replayed (nothing written, the trigger counts as
 * reconciled); any other difference (data, type, stream, lineage, principal) is still refused with
 * `store.idempotency_conflict`, which the runner parks as before. Returns whether the stored copies'
 * instants were taken.
 */
export async function appendKeepingStoredInstants(
  store: PgEventStore,
  ref: StreamRef,
  events: readonly ValidEnvelope[],
): Promise<{ restored: boolean }> {
  try {
    await store.append(ref, events)
    return { restored: false }
  } catch (e) {
    if (!isEventplaneError(e, 'store.idempotency_conflict')) throw e
    const ids = events.map((x) => x.event_id)
    const stored = new Map((await store.readEvents(ref.tenant, ids)).map((s) => [s.event_id, s.occurred_at]))
    // Only the instant changes in a second append: without another one (or with an id not stored: partly
    // appended batches do not exist) it would be refused again.
    if (!ids.every((id) => stored.has(id)) || events.every((x) => stored.get(x.event_id) === x.occurred_at)) throw e
    await store.append(
      ref,
      events.map((x) => validateEnvelope({ ...x, occurred_at: stored.get(x.event_id)! })),
    )
    return { restored: true }
  }
}
