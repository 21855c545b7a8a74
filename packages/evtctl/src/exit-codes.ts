import { isUnavailableError } from '@eventplane/core'
import { pgDriverError } from '@eventplane/store-pg'
import { CliError, type EvtctlError, type EvtctlErrorCode, interruptedError, isEvtctlError } from './cli-error.ts'

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

const BY_CODE: Partial<Record<EvtctlErrorCode, ExitCode>> = {
  'store.wrong_expected_version': EXIT.conflict,
  'store.idempotency_conflict': EXIT.conflict,
  'store.chain_broken': EXIT.conflict,
  'store.chain_unverifiable': EXIT.unavailable,
  'bus.rate_limited': EXIT.unavailable,
  'store.auth_failed': EXIT.denied,
  'bus.auth_failed': EXIT.denied,
  'store.forbidden': EXIT.denied,
  'bus.forbidden': EXIT.denied,
  'store.migration_failed': EXIT.usage,
  'bus.config': EXIT.usage,
  'bus.bad_request': EXIT.usage,
  'bus.stream_mismatch': EXIT.usage,
  'bus.unknown_tenant': EXIT.usage,
  'bus.unknown_user': EXIT.usage,
  'bus.jwt_not_applied': EXIT.usage,
  'runtime.unknown_projection': EXIT.usage,
  'runtime.unknown_controller': EXIT.usage,
  'runtime.invalid_domain': EXIT.usage,
  'runtime.handler_failed': EXIT.internal,
  'runtime.projection_not_shadowable': EXIT.usage,
  'cli.bad_usage': EXIT.usage,
  'cli.config': EXIT.usage,
  'cli.internal': EXIT.internal,
  'cli.interrupted': EXIT.interrupted,
}

/** The exit code for a typed error: by its code, a passing failure (core `UNAVAILABLE_CODES`) 3, `core.*` 1. */
export function exitCodeFor(error: EvtctlError): ExitCode {
  if (isUnavailableError(error)) return EXIT.unavailable
  const known = BY_CODE[error.code]
  if (known !== undefined) return known
  if (error.code.startsWith('core.')) return EXIT.usage
  return EXIT.internal
}

/**
 * Turns anything thrown into a typed error. The translation of a driver's
 * errors belongs to its transport package: PostgreSQL's to store-pg
 * (`pgDriverError`), NATS's to bus-nats (`natsDriverError`); what is left
 * here is evtctl's own: an abort, a file the user named, a bug. Typed
 * errors pass through unchanged.
 */
export async function toEventplaneError(e: unknown): Promise<EvtctlError> {
  if (isEvtctlError(e)) return e
  const typed = pgDriverError(e) ?? (await natsDriverError(e))
  if (typed !== undefined) return typed
  const err = (typeof e === 'object' && e !== null ? e : {}) as { code?: unknown; message?: unknown }
  const code = typeof err.code === 'string' ? err.code : ''
  const message = typeof err.message === 'string' ? err.message.split('\n')[0]! : String(e)
  if (e instanceof Error && e.name === 'AbortError') return interruptedError(e)
  if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') {
    return new CliError('cli.bad_usage', message, { cause: e })
  }
  return new CliError('cli.internal', message || 'unexpected error', { cause: e })
}

/** The one stderr line of a failure: `evtctl: <code>: <message>`, newlines folded. */
export function formatFailure(error: EvtctlError): string {
  return `evtctl: ${error.code}: ${error.message.replace(/\s*\n\s*/g, ' ')}\n`
}

/**
 * bus-nats's translation, loaded only for an error no other check typed: a command that never touched NATS
 * never loads nats.js for it (a NATS error can only come from a command that loaded it already).
 */
async function natsDriverError(e: unknown): Promise<EvtctlError | undefined> {
  return (await import('@eventplane/bus-nats')).natsDriverError(e)
}
