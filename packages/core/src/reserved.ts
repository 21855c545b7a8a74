import { InvalidName } from './errors.ts'

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
