/**
 * Typed errors with stable string codes. Callers match on `code` (see
 * `isEventplaneError`), never on message text; evtctl maps codes to exit
 * codes. The libraries' codes: a CLI's own (`cli.*`) live in that CLI.
 */
export type ErrorCode =
  | 'core.invalid_name'
  | 'core.invalid_envelope'
  | 'core.invalid_data'
  | 'core.payload_too_large'
  | 'core.schema_violation'
  | 'core.unknown_schema'
  | 'core.tenant_mismatch'
  | 'core.stream_mismatch'
  | 'store.wrong_expected_version'
  | 'store.idempotency_conflict'
  | 'store.forbidden'
  | 'store.auth_failed'
  | 'store.unavailable'
  | 'store.migration_failed'
  | 'store.chain_broken'
  | 'store.chain_unverifiable'
  | 'bus.unavailable'
  | 'bus.config'
  | 'bus.forbidden'
  | 'bus.auth_failed'
  | 'bus.bad_request'
  | 'bus.timeout'
  | 'bus.rate_limited'
  | 'bus.stream_mismatch'
  | 'bus.untrusted_message'
  | 'bus.unknown_tenant'
  | 'bus.unknown_user'
  | 'bus.jwt_not_applied'
  | 'bus.internal'
  | 'runtime.unknown_projection'
  | 'runtime.unknown_controller'
  | 'runtime.handler_failed'
  | 'runtime.projection_not_shadowable'
  | 'runtime.checkpoint_moved'
  | 'runtime.finalizers_pending'
  | 'runtime.reconcile_failed'
  | 'runtime.invalid_domain'

export interface EventplaneErrorOptions {
  cause?: unknown
  details?: Record<string, unknown>
}

/**
 * Base class of every error eventplane throws on purpose. `Code` widens the
 * codes for an application's own subclass (evtctl's `CliError`); the
 * libraries throw {@link ErrorCode}s only.
 */
export class EventplaneError<Code extends string = ErrorCode> extends Error {
  readonly code: Code
  readonly details: Record<string, unknown>

  constructor(code: NoInfer<Code>, message: string, options: EventplaneErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.details = options.details ?? {}
  }

  /** The wire form used by the gateway and `--json` output. */
  toJSON(): { code: Code; message: string; details?: Record<string, unknown> } {
    return Object.keys(this.details).length > 0
      ? { code: this.code, message: this.message, details: this.details }
      : { code: this.code, message: this.message }
  }
}

/** A name (tenant, category, stream id, type) broke the naming rules. */
export class InvalidName extends EventplaneError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('core.invalid_name', message, { details })
  }
}

/** An envelope is malformed: missing fields, wrong types, impossible lineage. */
export class InvalidEnvelope extends EventplaneError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('core.invalid_envelope', message, { details })
  }
}

/** Event data is not a JSON object that PostgreSQL's jsonb can store verbatim. */
export class InvalidData extends EventplaneError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('core.invalid_data', message, { details })
  }
}

export class PayloadTooLarge extends EventplaneError {
  /** `what` names the measured thing: the event's data (default) or a whole request body. */
  constructor(
    readonly size: number,
    readonly limit: number,
    what = 'event data',
  ) {
    super('core.payload_too_large', `${what} is ${size} bytes, over the ${limit} byte limit`, {
      details: { size, limit },
    })
  }
}

export class SchemaViolation extends EventplaneError {
  constructor(type: string, version: number, errors: string[]) {
    super('core.schema_violation', `data does not match schema ${type}@v${version}: ${errors[0] ?? 'invalid'}`, {
      details: { type, schema_version: version, errors },
    })
  }
}

export class UnknownSchema extends EventplaneError {
  constructor(type: string, version: number) {
    super('core.unknown_schema', `no schema registered for ${type}@v${version}`, {
      details: { type, schema_version: version },
    })
  }
}

export class TenantMismatch extends EventplaneError {
  constructor(expected: string, actual: string) {
    super('core.tenant_mismatch', `event belongs to tenant ${actual}, expected ${expected}`, {
      details: { expected, actual },
    })
  }
}

export class StreamMismatch extends EventplaneError {
  constructor(expected: string, actual: string) {
    super('core.stream_mismatch', `event belongs to stream ${actual}, expected ${expected}`, {
      details: { expected, actual },
    })
  }
}

export class WrongExpectedVersion extends EventplaneError {
  constructor(
    readonly stream: string,
    readonly expected: number | 'no_stream' | 'any',
    readonly actual: number,
    options: { cause?: unknown } = {},
  ) {
    super('store.wrong_expected_version', `stream ${stream} is at version ${actual}, expected ${expected}`, {
      cause: options.cause,
      details: { stream, expected, actual },
    })
  }
}

export class IdempotencyConflict extends EventplaneError {
  constructor(eventIds: string[], options: { cause?: unknown } = {}) {
    super('store.idempotency_conflict', `event id ${eventIds[0] ?? '?'} is already stored with different content`, {
      cause: options.cause,
      details: { event_ids: eventIds },
    })
  }
}

/** A dependency (PostgreSQL, NATS) cannot be reached; the operation may be retried with the same ids. */
export class Unavailable extends EventplaneError {
  constructor(code: 'store.unavailable' | 'bus.unavailable', message: string, options: EventplaneErrorOptions = {}) {
    super(code, message, options)
  }
}

export class Forbidden extends EventplaneError {
  constructor(code: 'store.forbidden' | 'bus.forbidden', message: string, options: { cause?: unknown } = {}) {
    super(code, message, options)
  }
}

/**
 * A request was refused before it was processed because its tenant is over a
 * limit (rate, requests or bytes in flight) or the server is at capacity.
 * Nothing was written: retrying the same request (same event id) after
 * `retryAfterMs` is safe.
 */
export class RateLimited extends EventplaneError {
  readonly retryAfterMs: number

  constructor(message: string, retryAfterMs: number, details: Record<string, unknown> = {}) {
    super('bus.rate_limited', message, { details: { ...details, retry_after_ms: retryAfterMs } })
    this.retryAfterMs = retryAfterMs
  }
}

/**
 * The codes of a passing failure: PostgreSQL or NATS could not be reached or
 * did not answer in time. Nothing is wrong with the request; the same
 * operation with the same ids succeeds once the dependency is back. The one
 * list the runners (wait, never give up on an event for it) and evtctl
 * (exit 3) classify by.
 */
export const UNAVAILABLE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'store.unavailable',
  'bus.unavailable',
  'bus.timeout',
])

/** True when `e` is a passing failure of a dependency (see {@link UNAVAILABLE_CODES}). */
export function isUnavailableError(e: unknown): e is EventplaneError {
  return isEventplaneError(e) && UNAVAILABLE_CODES.has(e.code)
}

/** True when `e` is an eventplane error, and has `code` if one is given. */
export function isEventplaneError(e: unknown, code?: ErrorCode): e is EventplaneError {
  return e instanceof EventplaneError && (code === undefined || e.code === code)
}

/**
 * Rebuilds a typed error from its wire form (gateway replies), keeping the
 * stable code; `bus.rate_limited` comes back as a {@link RateLimited} with its
 * retry-after (1 s when the wire form lacks a usable one).
 */
export function errorFromWire(wire: {
  code: string
  message: string
  details?: Record<string, unknown>
}): EventplaneError {
  const details = wire.details ?? {}
  if (wire.code === 'bus.rate_limited') {
    const after = details.retry_after_ms
    const retryAfterMs = typeof after === 'number' && Number.isFinite(after) && after >= 0 ? Math.ceil(after) : 1000
    return new RateLimited(wire.message, retryAfterMs, details)
  }
  return new EventplaneError(wire.code as ErrorCode, wire.message, { details })
}
