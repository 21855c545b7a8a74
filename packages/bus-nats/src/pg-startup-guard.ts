import { pgDriverError } from '@eventplane/store-pg'
import { type Logger, errorFields } from './logger.ts'

/**
 * Keeps a service process alive through a known postgres.js defect (3.4.9,
 * porsager/postgres#1192, #1223): every new connection first runs an
 * array-type query whose promise the driver drops, so when that connection is
 * terminated or cut while starting up, the error escapes as an unhandled
 * rejection and Node ends the process. The query that opened the connection
 * fails on its own with the same error (and is retried as `store.unavailable`),
 * so such a rejection is logged and ignored. Any other unhandled rejection
 * still ends the process, as Node's default would.
 */
export function surviveDroppedPgConnections(logger: Logger): void {
  process.on('unhandledRejection', (reason) => {
    if (pgDriverError(reason)?.code === 'store.unavailable') {
      logger.warn(errorFields(reason), 'a PostgreSQL connection failed while opening; the pool opens another')
      return
    }
    throw reason
  })
}
