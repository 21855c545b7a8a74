import { v5 as uuidv5 } from 'uuid'

/** Fixed namespace of controller fact ids; changing it would break idempotent retries of stored chains. */
export const FACT_ID_NAMESPACE = '6f1d8a52-3c0e-5b7a-9d41-2e8c7f90ab13'

/**
 * The id of the fact a controller emits at `step` for `triggerEventId`
 * (UUIDv5): a retried reconcile builds the same ids, and the store replays an
 * identical append instead of writing it twice.
 */
export function factId(controller: string, triggerEventId: string, step: string): string {
  return uuidv5(`${controller}/${triggerEventId}/${step}`, FACT_ID_NAMESPACE)
}
