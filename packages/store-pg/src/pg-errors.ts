import { EventplaneError, Forbidden, IdempotencyConflict, InvalidEnvelope, Unavailable } from '@eventplane/core'

/** Error codes postgres.js gives to connection failures (not SQLSTATEs). */
const CONNECTION_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
])

/** SQLSTATEs meaning the server went away or refuses work for now: safe to retry. */
function isUnavailableState(code: string): boolean {
  return code.startsWith('08') || ['57P01', '57P02', '57P03', '53300', '53400', '40001', '40P01'].includes(code)
}

interface PgErrorLike {
  code?: string
  detail?: string
  constraint_name?: string
  message?: string
}

/**
 * Maps a postgres.js error to a typed eventplane error by SQLSTATE or client
 * code, never by message text. Errors it does not know are returned as they are.
 */
export function mapPgError(e: unknown): unknown {
  if (e instanceof EventplaneError || typeof e !== 'object' || e === null) return e
  const err = e as PgErrorLike
  const code = err.code ?? ''
  if (CONNECTION_CODES.has(code) || isUnavailableState(code)) {
    return new Unavailable('store.unavailable', `PostgreSQL is unavailable (${code})`, { cause: e })
  }
  if (code === '3D000')
    return new Unavailable('store.unavailable', 'the PostgreSQL database does not exist', { cause: e })
  if (code.startsWith('28')) {
    return new EventplaneError('store.auth_failed', `PostgreSQL refused the login (${code})`, { cause: e })
  }
  if (code.startsWith('22')) {
    return new InvalidEnvelope(`PostgreSQL refused a value of the event (${code})`, { sqlstate: code })
  }
  if (code === 'EPIDC') return new IdempotencyConflict([err.detail ?? '?'], { cause: e })
  if (code === '23505' && err.constraint_name === 'events_event_id_key') {
    return new IdempotencyConflict(['?'], { cause: e })
  }
  if (code === '42501')
    return new Forbidden('store.forbidden', 'the database role may not do this for this tenant or kind', { cause: e })
  if (code === 'EPAPO') return new Forbidden('store.forbidden', 'the event log is append-only', { cause: e })
  return e
}
