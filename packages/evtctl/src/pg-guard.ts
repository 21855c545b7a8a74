import { type Sql, pgConnectError, pgConnectTimeout } from '@eventplane/store-pg'
import { type PgTarget, checkProtocol, describeTarget } from './pg-target.ts'
import { CliError, type EvtctlError } from './cli-error.ts'

/** A first connection slower than this gets its port checked for a PostgreSQL server. */
export const SLOW_CONNECT_MS = 1000

/**
 * Watches a new pool's first connection: a `select 1` must succeed within
 * `deadlineMs`. postgres.js bounds one attempt (connect_timeout) but retries
 * a server that closes the connection forever, so a wrong service on the
 * port (an HTTP server answers and closes) would hang every command. When
 * the first connection is slow the port is checked for a PostgreSQL server;
 * on failure the pool is ended, which fails the command's pending queries,
 * and the failure is returned (the promise never rejects).
 */
export function guardPool(sql: Sql, target: PgTarget, deadlineMs: number): Promise<EvtctlError | undefined> {
  return new Promise((resolve) => {
    let settled = false
    const finish = (failure: EvtctlError | undefined): void => {
      if (settled) return
      settled = true
      clearTimeout(slow)
      clearTimeout(deadline)
      if (failure) sql.end({ timeout: 0 }).catch(() => {})
      resolve(failure)
    }
    const deadline = setTimeout(() => finish(pgConnectTimeout(target, deadlineMs)), deadlineMs)
    const slow = setTimeout(async () => {
      if (target.host.startsWith('/')) return
      const check = await checkProtocol(target.host, target.port, Math.max(1, deadlineMs - SLOW_CONNECT_MS))
      if (check.speaks !== 'other') return
      finish(
        new CliError(
          'cli.config',
          `the server at ${target.host}:${target.port} is not PostgreSQL (it answered "${check.answer}"): check the database URL (${describeTarget(target)})`,
        ),
      )
    }, SLOW_CONNECT_MS)
    sql`select 1`.then(
      () => finish(undefined),
      (e: unknown) => finish(pgConnectError(e, target, deadlineMs)),
    )
  })
}
