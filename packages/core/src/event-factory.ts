import { v7 as uuidv7 } from 'uuid'
import type { EventData } from './data.ts'
import { type EventEnvelope, type EventKind, type ValidEnvelope, validateEnvelope } from './envelope.ts'
import { InvalidEnvelope, TenantMismatch } from './errors.ts'
import { validateTenant } from './names.ts'
import { markSystemEnvelope, refuseReservedCategory } from './reserved.ts'
import type { SchemaRegistry } from './schema-registry.ts'

export interface EventFactoryOptions {
  /** Principal stamped as `caused_by`: a user at the edge, a controller's name. */
  causedBy: string
  registry?: SchemaRegistry
  maxDataBytes?: number
  /** Clock, injectable for deterministic tests. */
  now?: () => Date
}

export interface NewEventOptions {
  schemaVersion?: number
  /** A caller-chosen id (UUID): a retry with the same id is idempotent. Defaults to a fresh UUIDv7. */
  eventId?: string
}

interface Lineage {
  correlationId: string
  causationId: string
}

/** The system mode of a factory: only {@link EventFactory.systemFromEvent} sets it (never options). */
const SYSTEM = Symbol('eventplane system factory')

/**
 * The only way to build event envelopes. A factory is bound to one tenant and
 * one principal; a child factory made with `causedBy(parent)` keeps the
 * parent's correlation id, points causation at the parent, and refuses a
 * parent from another tenant. It refuses a category in the system's reserved
 * namespace (`eventplane_…`, see RESERVED_CATEGORY_PREFIX) with `core.invalid_name`,
 * except a factory made by {@link EventFactory.systemFromEvent}.
 */
export class EventFactory {
  readonly tenant: string
  readonly principal: string
  readonly #options: EventFactoryOptions
  readonly #lineage: Lineage | undefined
  readonly #system: boolean

  private constructor(
    tenant: string,
    options: EventFactoryOptions,
    lineage: Lineage | undefined,
    system?: typeof SYSTEM,
  ) {
    this.tenant = validateTenant(tenant)
    if (typeof options.causedBy !== 'string' || !/^[\x21-\x7e]{1,200}$/.test(options.causedBy)) {
      throw new InvalidEnvelope('caused_by must be 1-200 printable ASCII characters without spaces')
    }
    this.principal = options.causedBy
    this.#options = options
    this.#lineage = lineage
    this.#system = system === SYSTEM
  }

  /** A root factory: its events start new correlation chains. */
  static forTenant(tenant: string, options: EventFactoryOptions): EventFactory {
    return new EventFactory(tenant, options, undefined)
  }

  /**
   * A factory for events caused by `parent`, in the parent's tenant (used by
   * controllers, which trust the envelope they were handed).
   */
  static fromEvent(parent: EventEnvelope, options: EventFactoryOptions): EventFactory {
    return new EventFactory(parent.tenant_id, options, {
      correlationId: parent.correlation_id,
      causationId: parent.event_id,
    })
  }

  /**
   * fromEvent for the system's own writers (the controller runner's `reconcile_started` records): its
   * events may name a reserved category, and the store appends them there (it knows them by identity, so
   * a copy is refused). Not for application code: a controller's handler gets a factory that is not one.
   */
  static systemFromEvent(parent: EventEnvelope, options: EventFactoryOptions): EventFactory {
    return new EventFactory(
      parent.tenant_id,
      options,
      { correlationId: parent.correlation_id, causationId: parent.event_id },
      SYSTEM,
    )
  }

  /** A child factory: same tenant, events caused by `parent` (a system factory's child is not one). */
  causedBy(parent: EventEnvelope, options: { causedBy?: string } = {}): EventFactory {
    if (parent.tenant_id !== this.tenant) throw new TenantMismatch(this.tenant, parent.tenant_id)
    return new EventFactory(
      this.tenant,
      { ...this.#options, causedBy: options.causedBy ?? this.principal },
      { correlationId: parent.correlation_id, causationId: parent.event_id },
    )
  }

  intent<D extends EventData>(
    stream: { category: string; id: string },
    type: string,
    data: D,
    options?: NewEventOptions,
  ): ValidEnvelope<D> {
    return this.#create('intent', stream, type, data, options)
  }

  fact<D extends EventData>(
    stream: { category: string; id: string },
    type: string,
    data: D,
    options?: NewEventOptions,
  ): ValidEnvelope<D> {
    return this.#create('fact', stream, type, data, options)
  }

  internal<D extends EventData>(
    stream: { category: string; id: string },
    type: string,
    data: D,
    options?: NewEventOptions,
  ): ValidEnvelope<D> {
    return this.#create('internal', stream, type, data, options)
  }

  #create<D extends EventData>(
    kind: EventKind,
    stream: { category: string; id: string },
    type: string,
    data: D,
    options: NewEventOptions = {},
  ): ValidEnvelope<D> {
    if (!this.#system) refuseReservedCategory(stream.category)
    const eventId = options.eventId ?? uuidv7()
    const envelope: EventEnvelope<D> = {
      event_id: eventId,
      tenant_id: this.tenant,
      kind,
      stream: { category: stream.category, id: stream.id },
      type,
      schema_version: options.schemaVersion ?? 1,
      data,
      correlation_id: this.#lineage?.correlationId ?? eventId,
      causation_id: this.#lineage?.causationId ?? null,
      caused_by: this.principal,
      occurred_at: (this.#options.now?.() ?? new Date()).toISOString(),
    }
    const valid = validateEnvelope(envelope, {
      maxDataBytes: this.#options.maxDataBytes,
      registry: this.#options.registry,
    }) as ValidEnvelope<D>
    return this.#system ? markSystemEnvelope(valid) : valid
  }
}
