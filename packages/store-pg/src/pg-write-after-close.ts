/**
 * postgres.js 3.4.9 (the newest release) has a defect no caller can catch
 * (porsager/postgres#1154, #1208; the one-line guard of PR #1168 is not
 * released): when PostgreSQL terminates a session inside a transaction
 * (`pg_terminate_backend`, `idle_in_transaction_session_timeout`, a
 * failover), `sql.begin` sends ROLLBACK on the dead connection, and that
 * statement's write, deferred to a `setImmediate`, runs after the socket is
 * gone: `nextWrite` throws `TypeError: Cannot read properties of null
 * (reading 'write')` on an empty stack, an uncaught exception that ends the
 * process. Nothing is lost by ignoring it: the transaction was dead already
 * and `begin` rejects with `CONNECTION_CLOSED` on its own (see
 * `pgDriverError`: `store.unavailable`). The unpatched driver also leaves
 * that connection unable to connect again (every later use waits out
 * `connect_timeout`): `patches/postgres@3.4.9.patch` mends that, not this guard.
 */

const MESSAGE = "Cannot read properties of null (reading 'write')"
/** The driver's connection module, ESM or CommonJS build, wherever it is installed. */
const CONNECTION_FILE = /[\\/]postgres[\\/](?:cjs[\\/]|cf[\\/])?src[\\/]connection\.js:\d+:\d+\)?$/
/** The frame V8 names for `nextWrite`, called directly or as a `setImmediate` callback (`Immediate.nextWrite`). */
const NEXT_WRITE_FRAME = /^\s*at (?:\S+\.)?nextWrite \(/

/**
 * True for exactly that defect: a TypeError with that message whose stack's
 * top frame is `nextWrite` in postgres.js's `src/connection.js`. Any other
 * error, another TypeError with the same message included, is false.
 */
export function isPgWriteAfterClose(e: unknown): boolean {
  if (!(e instanceof TypeError) || e.message !== MESSAGE || typeof e.stack !== 'string') return false
  const top = e.stack.split('\n').find((line) => /^\s*at /.test(line))
  return top !== undefined && NEXT_WRITE_FRAME.test(top) && CONNECTION_FILE.test(top)
}

/** The one line a guard writes for an ignored defect (no payload, nothing of the statement). */
export const PG_WRITE_AFTER_CLOSE_WARNING =
  'a PostgreSQL session was terminated during a transaction; the driver failed writing its ROLLBACK to the closed connection (porsager/postgres#1208), ignored'

export interface PgWriteAfterCloseGuardOptions {
  /** Called once per ignored defect (default: one warning line on stderr). */
  onIgnored?: () => void
  /**
   * Called with every other uncaught exception. Installing an
   * `uncaughtException` listener turns off Node's own handling, so this must
   * end the process (default: the stack on stderr and exit 1, as Node does).
   */
  onOther?: (error: unknown) => void
}

/**
 * Installs the narrowest `uncaughtException` handler that keeps a process
 * alive through the postgres.js defect above: that one error is reported with
 * one line and ignored, anything else goes to `onOther`, which ends the
 * process. For an application embedding the runtime (a `ProjectionRunner` or
 * controller on its own pool); evtctl installs it at its entry point. Call it
 * once per process; returns the function that removes it.
 */
export function guardPgWriteAfterClose(options: PgWriteAfterCloseGuardOptions = {}): () => void {
  const onIgnored = options.onIgnored ?? (() => process.stderr.write(`warning: ${PG_WRITE_AFTER_CLOSE_WARNING}\n`))
  const onOther =
    options.onOther ??
    ((error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
      process.exit(1)
    })
  const handler = (error: unknown): void => {
    if (isPgWriteAfterClose(error)) onIgnored()
    else onOther(error)
  }
  process.on('uncaughtException', handler)
  return () => {
    process.off('uncaughtException', handler)
  }
}
