import { InvalidEnvelope, InvalidName } from './errors.ts'

/**
 * Categories whose names begin with this prefix (in any letter case) are the system's own: the
 * runtime's `eventplane_reconciles`, and any it adds later. Tenants read them like any other
 * category, but cannot write into them: the gateway refuses an intent, the EventFactory refuses to
 * build an event and the store refuses to append one, all with `core.invalid_name`.
 */
export const RESERVED_CATEGORY_PREFIX = 'eventplane_'

const RESERVED = /^eventplane_/i

/** True when `category` is in the system's reserved namespace ({@link RESERVED_CATEGORY_PREFIX}). */
export function isReservedCategory(category: string): boolean {
  return RESERVED.test(category)
}

/** Throws `core.invalid_name` when `category` is reserved: the writers' check (reads accept it). */
export function refuseReservedCategory(category: string): void {
  if (isReservedCategory(category))
    throw new InvalidName(
      `category ${JSON.stringify(category)} is reserved for the system (names beginning with ${RESERVED_CATEGORY_PREFIX})`,
      { kind: 'category', reserved: RESERVED_CATEGORY_PREFIX },
    )
}

/**
 * The UUID version of the system's derived event ids: the runtime names each fact, park and reconcile record
 * of a controller by a UUIDv5 of the controller's name, the trigger's id and a step (`factId`), so a retry
 * writes the same ids. Anyone who knows a trigger's id can compute them; a tenant holds its own intents' ids.
 * An intent stored under one first would hold it for ever (the log is append-only) and the runtime could
 * never record that fact or park: so tenant input (the gateway, `draftIntent`) may not use this version.
 */
export const RESERVED_EVENT_ID_VERSION = 5

/** True when `id` (a UUID in its text form) has the system's version ({@link RESERVED_EVENT_ID_VERSION}). */
export function isReservedEventId(id: string): boolean {
  return id.length === 36 && id[14] === String(RESERVED_EVENT_ID_VERSION)
}

/** Throws `core.invalid_envelope` when an intent's `id` is of the system's version: the edge's check. */
export function refuseReservedEventId(id: string): void {
  if (isReservedEventId(id))
    throw new InvalidEnvelope(
      `an intent's event_id may not be a UUIDv${RESERVED_EVENT_ID_VERSION}: name-based ids are the system's ` +
        "(its controllers' deterministic fact ids); use a UUIDv7",
      { reserved_version: RESERVED_EVENT_ID_VERSION },
    )
}

/** Envelopes the system's own writers made or vouched for in this process, by identity (never a copy). */
const systemEnvelopes = new WeakSet<object>()

/** Marks an envelope as the system's: core's EventFactory.systemFromEvent and asSystemEnvelope only. */
export function markSystemEnvelope<E extends object>(e: E): E {
  systemEnvelopes.add(e)
  return e
}

/**
 * True when `e` itself (not a copy) came from a system writer in this process: a factory made by
 * EventFactory.systemFromEvent, or asSystemEnvelope. The store appends such an envelope to a
 * reserved category, and nothing else.
 */
export function isSystemEnvelope(e: unknown): boolean {
  return typeof e === 'object' && e !== null && systemEnvelopes.has(e)
}
