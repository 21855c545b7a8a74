import type { EventData, ValidEnvelope, EventFactory, EventKind, RecordedEvent } from '@eventplane/core'
import type { Logger } from '@eventplane/bus-nats'

/**
 * What a controller gets with each event. Everything it emits is built from
 * `factory`, derived from the triggering event (same tenant and correlation,
 * causation = the trigger, `caused_by` = `controller:<name>`, `occurred_at` =
 * the trigger's `recorded_at`), with ids from `id(step)`, so a retry rebuilds
 * byte-identical facts and the store replays them instead of appending twice.
 */
export interface ReconcileContext {
  readonly event: RecordedEvent
  readonly factory: EventFactory
  /** 1 on the first try of this delivery. */
  readonly attempt: number
  /** Aborted when the runner stops; stop work and throw. */
  readonly signal: AbortSignal
  readonly log: Logger
  /** The deterministic id of this reconcile's fact at `step` (UUIDv5 of controller, trigger id, step). */
  id(step: string): string
  /** A fact on the trigger's stream (or `options.stream`) with the id of `options.step` (default: the type). */
  fact(
    type: string,
    data: EventData,
    options?: { step?: string; stream?: { category: string; id: string }; schemaVersion?: number },
  ): ValidEnvelope
  /** Appends facts (kind fact or internal) as `eventplane_fact_writer`, each stream's events in one append; idempotent. */
  emit(...events: ValidEnvelope[]): Promise<void>
  /** The trigger's stream up to and including the trigger: the same on every retry. */
  history(): Promise<RecordedEvent[]>
  /** The trigger's stream (or `stream`) as it is now. */
  readStream(stream?: { category: string; id: string }): Promise<RecordedEvent[]>
}

/**
 * A controller: reacts to events of its kinds and categories and reconciles
 * them into facts. `reconcile` must be deterministic in the trigger and its
 * history; it throws a typed transient error (`store.unavailable`, …) to be
 * retried, anything else parks the event with a `reconcile_failed` event.
 * Controllers never authorize: the edge already did.
 */
export interface Controller {
  readonly name: string
  /** Default: intents only. */
  readonly kinds?: readonly EventKind[]
  readonly categories: readonly string[]
  /** Types to react to; default all. */
  readonly types?: readonly string[]
  reconcile(event: RecordedEvent, ctx: ReconcileContext): Promise<void>
}
