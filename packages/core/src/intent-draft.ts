import { v7 as uuidv7 } from 'uuid'
import type { EventData } from './data.ts'
import { type EventEnvelope, type IntentDraft, ensureStreamRef, validateIntentDraft } from './envelope.ts'
import { TenantMismatch } from './errors.ts'
import type { NewEventOptions } from './event-factory.ts'
import type { SchemaRegistry } from './schema-registry.ts'
import type { StreamRef } from './stream.ts'

export interface DraftIntentOptions extends NewEventOptions {
  /** The event this intent answers: same tenant (checked), its correlation kept, causation = parent. */
  parent?: Pick<EventEnvelope, 'event_id' | 'correlation_id' | 'tenant_id'>
  /** Clock, injectable (a retried UUIDv7 id fixes occurred_at). */
  now?: () => Date
  maxDataBytes?: number
  registry?: SchemaRegistry
}

/**
 * An intent for the gateway, unstamped: the client names tenant, stream,
 * type and data; the gateway stamps `caused_by` from the identity NATS
 * vouches for ({@link stampIntent}), so the client has nothing to fake and
 * nothing to fill in. Checked here like an envelope, so bad input fails
 * before it is sent; the stream's names are parsed only when `stream` is
 * not a {@link ValidStreamRef} already (`parseStream`'s).
 */
export function draftIntent<D extends EventData>(
  stream: StreamRef,
  type: string,
  data: D,
  options: DraftIntentOptions = {},
): IntentDraft<D> {
  const ref = ensureStreamRef(stream)
  const tenant = ref.tenant
  const parent = options.parent
  if (parent !== undefined && parent.tenant_id !== tenant) throw new TenantMismatch(tenant, parent.tenant_id)
  const eventId = options.eventId ?? uuidv7()
  const draft: IntentDraft<D> = {
    event_id: eventId,
    tenant_id: tenant,
    kind: 'intent',
    stream: { category: ref.category, id: ref.id },
    type,
    schema_version: options.schemaVersion ?? 1,
    data,
    correlation_id: parent?.correlation_id ?? eventId,
    causation_id: parent?.event_id ?? null,
    occurred_at: (options.now?.() ?? new Date()).toISOString(),
  }
  validateIntentDraft(draft, { maxDataBytes: options.maxDataBytes, registry: options.registry, stream: ref })
  return draft
}
