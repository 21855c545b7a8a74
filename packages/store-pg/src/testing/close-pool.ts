import type { Sql } from 'postgres'

/** Seconds {@link closePool} lets running queries finish before it destroys the connections. */
export const CLOSE_POOL_TIMEOUT_S = 2

/**
 * Ends a postgres.js pool within `timeoutS` seconds. A bare `sql.end()` waits for every query on the pool, with
 * no bound: a query blocked on a lock, or a connection whose backend was killed or whose server restarted while
 * the socket stayed open, holds a test's teardown until the file's 300 s timeout. With a timeout postgres.js
 * destroys what is still open (those queries reject with CONNECTION_DESTROYED). Every test pool closes through
 * this, not its own `end()`.
 */
export function closePool(sql: Sql, timeoutS = CLOSE_POOL_TIMEOUT_S): Promise<void> {
  return sql.end({ timeout: timeoutS })
}
