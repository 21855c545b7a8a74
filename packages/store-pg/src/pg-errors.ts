import type { Sql, TransactionSql } from 'postgres'
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
 * The typed error for a failure any postgres.js call can raise, whoever wrote
 * the SQL: PostgreSQL unreachable or refusing work for now, or the database
 * missing (`store.unavailable`, retry is safe), the login refused
 * (`store.auth_failed`), permission denied (`store.forbidden`); undefined for
 * anything else. For SQL that store-pg does not run itself (a SQL
 * projection's own statements) and failures of the driver: store-pg's own
 * functions already throw typed errors. Classifies by SQLSTATE or client
 * code, never by message text.
 */
export function pgDriverError(e: unknown): EventplaneError | undefined {
  if (e instanceof EventplaneError || typeof e !== 'object' || e === null) return undefined
  // Not every error's code is a string: a DOMException's (an AbortError's) is a number.
  const raw: unknown = (e as PgErrorLike).code
  const code = typeof raw === 'string' ? raw : ''
  if (CONNECTION_CODES.has(code) || isUnavailableState(code)) {
    return new Unavailable('store.unavailable', `PostgreSQL is unavailable (${code})`, { cause: e })
  }
  if (code === '3D000')
    return new Unavailable('store.unavailable', 'the PostgreSQL database does not exist', { cause: e })
  if (code.startsWith('28')) {
    return new EventplaneError('store.auth_failed', `PostgreSQL refused the login (${code})`, { cause: e })
  }
  if (code === '42501')
    return new Forbidden('store.forbidden', 'the database role may not do this for this tenant or kind', { cause: e })
  return undefined
}

/**
 * `sql.begin(fn)` with its rejection typed by {@link pgDriverError}; other
 * errors (the typed ones `fn` threw included) are rethrown as they are. For
 * every transaction outside store-pg's own functions: when PostgreSQL
 * terminates the session inside the transaction, postgres.js 3.4.9 rejects
 * `begin` with its ROLLBACK's raw `CONNECTION_CLOSED`, not with what `fn`
 * threw, so without this a passing failure would look fatal.
 */
export async function typedBegin<T>(sql: Sql, fn: (tx: TransactionSql) => Promise<T>): Promise<T> {
  try {
    return (await sql.begin(fn)) as T
  } catch (e) {
    throw pgDriverError(e) ?? e
  }
}

/**
 * Maps an error of store-pg's own SQL to a typed eventplane error by SQLSTATE
 * or client code, never by message text: pgDriverError's failures plus what
 * the log's schema and functions raise. Errors it does not know are returned
 * as they are. Internal: every store-pg function throws typed errors already.
 */
export function mapPgError(e: unknown): unknown {
  const driver = pgDriverError(e)
  if (driver !== undefined) return driver
  if (e instanceof EventplaneError || typeof e !== 'object' || e === null) return e
  const err = e as PgErrorLike
  const code = err.code ?? ''
  if (code === '42P01' || code === '3F000') {
    return new Unavailable(
      'store.unavailable',
      `the eventplane schema is missing in this database (run the migrations: evtctl migrate) (${code})`,
      { cause: e, details: { missing: 'schema' } },
    )
  }
  if (code.startsWith('22')) {
    return new InvalidEnvelope(`PostgreSQL refused a value of the event (${code})`, { sqlstate: code })
  }
  if (code === 'EPIDC') return new IdempotencyConflict([err.detail ?? '?'], { cause: e })
  if (code === '23505' && err.constraint_name === 'events_event_id_key') {
    return new IdempotencyConflict(['?'], { cause: e })
  }
  if (code === 'EPAPO') return new Forbidden('store.forbidden', 'the event log is append-only', { cause: e })
  return e
}

/**
 * Runs one store operation and rethrows whatever it throws as a typed error
 * (see mapPgError), so no caller of store-pg ever handles a raw driver error.
 */
export async function typedPgErrors<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation()
  } catch (e) {
    throw mapPgError(e)
  }
}

/** Where a pool connects, for messages: never the password. */
/**
 * The batches of a postgres.js cursor (`sql\`…\`.cursor(n)`), each fetch's
 * errors typed as `typedPgErrors` types them, checking `signal` before each
 * fetch; stopping early closes the cursor.
 */
export async function* typedCursor<R>(batches: AsyncIterable<R[]>, signal?: AbortSignal): AsyncGenerator<R[]> {
  const cursor = batches[Symbol.asyncIterator]()
  try {
    for (;;) {
      signal?.throwIfAborted()
      const next = await typedPgErrors(() => cursor.next())
      if (next.done) return
      yield next.value
    }
  } finally {
    await cursor.return?.()
  }
}

export interface PgConnectTarget {
  host: string
  port: number
  database: string
  role: string
}

/** Codes postgres.js gives a query that was pending when the pool was ended: not a connection failure. */
const ENDED = new Set(['CONNECTION_ENDED', 'CONNECTION_DESTROYED'])

const describeTarget = (t: PgConnectTarget): string =>
  `database "${t.database}" as role "${t.role}" at ${t.host}:${t.port}`

/** No answer from PostgreSQL within `deadlineMs` (a pool's first connection): `store.unavailable`. */
export function pgConnectTimeout(target: PgConnectTarget, deadlineMs: number, cause?: unknown): EventplaneError {
  return new Unavailable(
    'store.unavailable',
    `no PostgreSQL answer within ${deadlineMs / 1000} s for ${describeTarget(target)}: is a PostgreSQL server listening there?`,
    cause === undefined ? {} : { cause },
  )
}

/**
 * The first connection failure of a pool as a one-line typed error naming
 * the server, database and role (`store.auth_failed` for a refused login,
 * `store.unavailable` otherwise); undefined when the pool was ended first.
 * By client code and SQLSTATE, like {@link pgDriverError}.
 */
export function pgConnectError(e: unknown, target: PgConnectTarget, deadlineMs: number): EventplaneError | undefined {
  const err = (typeof e === 'object' && e !== null ? e : {}) as PgErrorLike
  const code = typeof err.code === 'string' ? err.code : ''
  const detail = typeof err.message === 'string' ? err.message.split('\n')[0] : ''
  const where = describeTarget(target)
  if (ENDED.has(code)) return undefined
  if (code === 'CONNECT_TIMEOUT') return pgConnectTimeout(target, deadlineMs, e)
  if (code.startsWith('28'))
    return new EventplaneError('store.auth_failed', `PostgreSQL refused the login to ${where} (${code}: ${detail})`, {
      cause: e,
    })
  if (code === '3D000')
    return new Unavailable(
      'store.unavailable',
      `database "${target.database}" does not exist at ${target.host}:${target.port} (connecting as role "${target.role}")`,
      { cause: e },
    )
  return new Unavailable('store.unavailable', `cannot connect to PostgreSQL for ${where} (${code || detail})`, {
    cause: e,
  })
}
