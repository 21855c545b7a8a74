import type { Sql } from 'postgres'
import { EventplaneError, Unavailable } from '@eventplane/core'
import { type PgTarget, checkProtocol, describeTarget } from './pg-target.ts'

/** A first connection slower than this gets its port checked for a PostgreSQL server. */
export const SLOW_CONNECT_MS = 1000

/** Codes postgres.js gives a query that was pending when the pool was ended: not a connection failure. */
const ENDED = new Set(['CONNECTION_ENDED', 'CONNECTION_DESTROYED'])

/**
 * The first connection failure of a pool as a one-line typed error naming
 * the server, database and role (never the password); undefined when the
 * pool connected or was closed first.
 */
export function connectFailure(e: unknown, target: PgTarget, deadlineMs: number): EventplaneError | undefined {
  const err = (typeof e === 'object' && e !== null ? e : {}) as { code?: unknown; message?: unknown }
  const code = typeof err.code === 'string' ? err.code : ''
  const detail = typeof err.message === 'string' ? err.message.split('\n')[0] : ''
  const where = describeTarget(target)
  if (ENDED.has(code)) return undefined
  if (code === 'CONNECT_TIMEOUT') return timedOut(target, deadlineMs, e)
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

function timedOut(target: PgTarget, deadlineMs: number, cause?: unknown): EventplaneError {
  return new Unavailable(
    'store.unavailable',
    `no PostgreSQL answer within ${deadlineMs / 1000} s for ${describeTarget(target)}: is a PostgreSQL server listening there?`,
    cause === undefined ? {} : { cause },
  )
}

/**
 * Watches a new pool's first connection: a `select 1` must succeed within
 * `deadlineMs`. postgres.js bounds one attempt (connect_timeout) but retries
 * a server that closes the connection forever, so a wrong service on the
 * port (an HTTP server answers and closes) would hang every command. When
 * the first connection is slow the port is checked for a PostgreSQL server;
 * on failure the pool is ended, which fails the command's pending queries,
 * and the failure is returned (the promise never rejects).
 */
export function guardPool(sql: Sql, target: PgTarget, deadlineMs: number): Promise<EventplaneError | undefined> {
  return new Promise((resolve) => {
    let settled = false
    const finish = (failure: EventplaneError | undefined): void => {
      if (settled) return
      settled = true
      clearTimeout(slow)
      clearTimeout(deadline)
      if (failure) sql.end({ timeout: 0 }).catch(() => {})
      resolve(failure)
    }
    const deadline = setTimeout(() => finish(timedOut(target, deadlineMs)), deadlineMs)
    const slow = setTimeout(async () => {
      if (target.host.startsWith('/')) return
      const check = await checkProtocol(target.host, target.port, Math.max(1, deadlineMs - SLOW_CONNECT_MS))
      if (check.speaks !== 'other') return
      finish(
        new EventplaneError(
          'cli.config',
          `the server at ${target.host}:${target.port} is not PostgreSQL (it answered "${check.answer}"): check the database URL (${describeTarget(target)})`,
        ),
      )
    }, SLOW_CONNECT_MS)
    sql`select 1`.then(
      () => finish(undefined),
      (e: unknown) => finish(connectFailure(e, target, deadlineMs)),
    )
  })
}
