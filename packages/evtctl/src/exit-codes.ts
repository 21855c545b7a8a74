import { EventplaneError, type ErrorCode, isEventplaneError } from '@eventplane/core'
import { pgDriverError } from '@eventplane/store-pg'
import { errors as natsErrors } from '@nats-io/transport-node'
import { isJetStreamDisabled, jetStreamDisabled } from './jetstream-check.ts'

/**
 * evtctl's exit codes. Scripts may rely on them: 2 means "re-read and decide",
 * 3 means "retrying later with the same ids is safe", 4 means "retrying will
 * not help until the credentials or grants change".
 */
export const EXIT = {
  ok: 0,
  /** Bad usage or invalid input: unknown option, malformed JSON, bad name, unknown projection, bad config. */
  usage: 1,
  /** Optimistic concurrency or idempotency conflict. */
  conflict: 2,
  /** A server cannot be reached, did not answer in time, or refused for now (rate limited). */
  unavailable: 3,
  /** Authentication failed or the role/user may not do this. */
  denied: 4,
  /** A bug or an error evtctl does not know; the message says what. */
  internal: 70,
  /** Stopped by SIGINT/SIGTERM before it finished (long-running commands stopping on a signal exit 0). */
  interrupted: 130,
} as const
/** One of the documented exit codes. */
export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

const BY_CODE: Partial<Record<ErrorCode, ExitCode>> = {
  'store.wrong_expected_version': EXIT.conflict,
  'store.idempotency_conflict': EXIT.conflict,
  'store.unavailable': EXIT.unavailable,
  'store.chain_broken': EXIT.conflict,
  'store.chain_unverifiable': EXIT.unavailable,
  'bus.unavailable': EXIT.unavailable,
  'bus.timeout': EXIT.unavailable,
  'bus.rate_limited': EXIT.unavailable,
  'store.auth_failed': EXIT.denied,
  'bus.auth_failed': EXIT.denied,
  'store.forbidden': EXIT.denied,
  'bus.forbidden': EXIT.denied,
  'store.migration_failed': EXIT.usage,
  'bus.bad_request': EXIT.usage,
  'bus.stream_mismatch': EXIT.usage,
  'bus.unknown_tenant': EXIT.usage,
  'runtime.unknown_projection': EXIT.usage,
  'runtime.unknown_controller': EXIT.usage,
  'runtime.handler_failed': EXIT.internal,
  'cli.bad_usage': EXIT.usage,
  'cli.config': EXIT.usage,
  'cli.internal': EXIT.internal,
  'cli.interrupted': EXIT.interrupted,
}

/** The exit code for a typed error: by its code, `core.*` is always 1. */
export function exitCodeFor(error: EventplaneError): ExitCode {
  const known = BY_CODE[error.code]
  if (known !== undefined) return known
  if (error.code.startsWith('core.')) return EXIT.usage
  return EXIT.internal
}

/**
 * Turns anything thrown into a typed error, by codes and classes only (never
 * by message text): postgres.js SQLSTATEs, nats.js error classes, Node's
 * system error codes. Typed errors pass through unchanged.
 */
export function toEventplaneError(e: unknown): EventplaneError {
  if (isEventplaneError(e)) return e
  // store-pg's functions throw typed errors; a raw driver error comes from a projection's own SQL or the driver.
  const driver = pgDriverError(e)
  if (driver !== undefined) return driver
  const err = (typeof e === 'object' && e !== null ? e : {}) as { code?: unknown; message?: unknown }
  const code = typeof err.code === 'string' ? err.code : ''
  const message = typeof err.message === 'string' ? err.message.split('\n')[0]! : String(e)
  if (isJetStreamDisabled(e)) return jetStreamDisabled(undefined, e)
  if (e instanceof natsErrors.RequestError) {
    if (e.isNoResponders())
      return new EventplaneError('bus.unavailable', `nobody answers on NATS: ${message}`, { cause: e })
    if (e.cause !== undefined) return toEventplaneError(e.cause)
  }
  if (e instanceof natsErrors.AuthorizationError || e instanceof natsErrors.UserAuthenticationExpiredError) {
    return new EventplaneError('bus.auth_failed', `NATS refused the credentials: ${message}`, { cause: e })
  }
  if (e instanceof natsErrors.PermissionViolationError)
    return new EventplaneError('bus.forbidden', `NATS: ${message}`, { cause: e })
  if (e instanceof natsErrors.TimeoutError)
    return new EventplaneError('bus.timeout', `NATS did not answer in time`, { cause: e })
  if (e instanceof natsErrors.NoRespondersError) {
    return new EventplaneError('bus.unavailable', 'no gateway is answering on NATS (is `evtctl up` running?)', {
      cause: e,
    })
  }
  if (e instanceof natsErrors.ConnectionError || e instanceof natsErrors.ClosedConnectionError) {
    return new EventplaneError('bus.unavailable', `NATS is unavailable: ${message}`, { cause: e })
  }
  if (e instanceof Error && e.name === 'AbortError')
    return new EventplaneError('cli.interrupted', 'interrupted', { cause: e })
  if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') {
    return new EventplaneError('cli.bad_usage', message, { cause: e })
  }
  return new EventplaneError('cli.internal', message || 'unexpected error', { cause: e })
}

/** The one stderr line of a failure: `evtctl: <code>: <message>`, newlines folded. */
export function formatFailure(error: EventplaneError): string {
  return `evtctl: ${error.code}: ${error.message.replace(/\s*\n\s*/g, ' ')}\n`
}
