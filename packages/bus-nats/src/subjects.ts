import {
  EVENT_KINDS,
  InvalidName,
  ensureStreamRef,
  streamRef,
  validateCategory,
  validateStreamId,
  validateTenant,
} from '@eventplane/core'
import type { EventKind, StreamRef, ValidStreamRef } from '@eventplane/core'

/** The one JetStream stream holding the log (DESIGN §4). */
export const STREAM_NAME = 'EVENTPLANE'

/** Root of the log subjects; only the relay publishes under it, nothing else may live there. */
export const LOG_ROOT = 'eventplane'

/**
 * Root of the request/reply API. Deliberately a different first token than
 * {@link LOG_ROOT}: `eventplane-api.>` is not matched by the stream's
 * `eventplane.>`, so submit requests are never captured into the log.
 */
export const API_ROOT = 'eventplane-api'

/** Subject filter covering every log subject; the stream's only subject. */
export const LOG_SUBJECTS = `${LOG_ROOT}.>`

/** Subject filter covering every submit request; what the gateway serves. */
export const SUBMIT_SUBJECTS = `${API_ROOT}.submit.>`

/**
 * The stream holding published chain heads: a copy of each tenant's anchor
 * outside PostgreSQL, on the system side (the log account), where no tenant
 * account has JetStream or an import. Its own root, outside `eventplane.`
 * (the log stream's, exported to tenants for the live tail).
 */
export const HEADS_STREAM_NAME = 'EVENTPLANE_HEADS'
export const HEADS_ROOT = 'eventplane-heads'
export const HEADS_SUBJECTS = `${HEADS_ROOT}.>`

/** `eventplane-heads.<tenant>`: where a tenant's heads are published. */
export function headsSubject(tenant: string): string {
  return `${HEADS_ROOT}.${validateTenant(tenant)}`
}

/**
 * `eventplane-heads.<tenant>.parts`: the parts of heads too large for one
 * message; the message on {@link headsSubject} lists them (tenant names hold no dots).
 */
export function headsPartsSubject(tenant: string): string {
  return `${headsSubject(tenant)}.parts`
}

function validateKind(kind: unknown): EventKind {
  if (typeof kind !== 'string' || !(EVENT_KINDS as readonly string[]).includes(kind)) {
    throw new InvalidName(`event kind ${JSON.stringify(kind)} is not one of ${EVENT_KINDS.join(', ')}`, {
      kind: 'kind',
    })
  }
  return kind as EventKind
}

/**
 * `eventplane.<kind>.<tenant>.<category>.<id>`. Every token is validated, so a
 * `.`, `*` or `>` in a name can never widen or split the subject.
 */
export function logSubject(kind: EventKind, tenant: string, category: string, id: string): string {
  return `${LOG_ROOT}.${validateKind(kind)}.${validateTenant(tenant)}.${validateCategory(category)}.${validateStreamId(id)}`
}

/** `eventplane-api.submit.<tenant>.<category>.<id>`: where a client sends an intent. */
export function submitSubject(tenant: string, category: string, id: string): string {
  return submitSubjectFor(streamRef(tenant, category, id))
}

/** {@link submitSubject} of a stream; a {@link ValidStreamRef} (parsed in this process) is not parsed again. */
export function submitSubjectFor(stream: StreamRef): string {
  const ref = ensureStreamRef(stream)
  return `${API_ROOT}.submit.${ref.tenant}.${ref.category}.${ref.id}`
}

/** The stream a submit request names, parsed from its subject: the gateway's one parse of these names. */
export type SubmitTarget = ValidStreamRef

/**
 * Parses the subject a submit request arrived on. The gateway compares the
 * envelope's tenant with this one, so a malformed subject must fail here with
 * `core.invalid_name`, never be read loosely.
 */
export function parseSubmitSubject(subject: string): SubmitTarget {
  const tokens = subject.split('.')
  if (tokens.length !== 5 || tokens[0] !== API_ROOT || tokens[1] !== 'submit') {
    throw new InvalidName(
      `${JSON.stringify(subject)} is not a submit subject (${API_ROOT}.submit.<tenant>.<category>.<id>)`,
      {
        kind: 'subject',
      },
    )
  }
  return streamRef(tokens[2]!, tokens[3]!, tokens[4]!)
}

export interface LogFilterOptions {
  kind?: EventKind
  tenant?: string
  category?: string
}

/**
 * A subject filter over the log: omitted leading tokens become `*`, and
 * everything after the last given token is `>` (e.g. `eventplane.*.acme.>`).
 * The result is the same string the permission config grants, so a tenant's
 * consumer filter built here matches its allowed create subject exactly.
 */
export function logFilter(options: LogFilterOptions = {}): string {
  const tokens = [
    options.kind === undefined ? undefined : validateKind(options.kind),
    options.tenant === undefined ? undefined : validateTenant(options.tenant),
    options.category === undefined ? undefined : validateCategory(options.category),
  ]
  let last = -1
  tokens.forEach((t, i) => {
    if (t !== undefined) last = i
  })
  const given = tokens.slice(0, last + 1).map((t) => t ?? '*')
  return [LOG_ROOT, ...given, '>'].join('.')
}

/**
 * `_INBOX_<tenant>`: a tenant client's reply-inbox prefix (nats.js
 * `inboxPrefix`). A single token, so the server grants `_INBOX_<tenant>.>`
 * to that tenant alone and nobody else can subscribe to its replies.
 */
export function tenantInboxPrefix(tenant: string): string {
  return `_INBOX_${validateTenant(tenant)}`
}

/** {@link tenantInboxPrefix} of a stream's tenant; a {@link ValidStreamRef} is not parsed again. */
export function inboxPrefixFor(stream: StreamRef): string {
  return `_INBOX_${ensureStreamRef(stream).tenant}`
}
