import type { Writer } from './io.ts'

/**
 * The process-wide handler for unhandled rejections, installed by the entry
 * point (main.ts) and nowhere else: any unhandled rejection ends the process
 * with one line and exit 70 (internal), as a typed failure would, not with a
 * stack trace. None is expected of the driver: postgres.js 3.4.9 dropped the
 * promise of the array-type query every new connection runs first
 * (porsager/postgres#1192, #1223), so a connection ended while opening
 * rejected unhandled, but store-pg, the driver's one owner, bundles it
 * patched (patches/postgres@3.4.9.patch) to handle that query's failure.
 */
export function guardUnhandledRejections(stderr: Writer, exit: (code: number) => void): void {
  process.on('unhandledRejection', (reason) => {
    const message = reason instanceof Error ? reason.message : String(reason)
    stderr.write(`evtctl: cli.internal: unhandled rejection: ${message.split('\n')[0]}\n`)
    exit(70)
  })
}

/**
 * The process-wide handler for uncaught exceptions, installed by the entry
 * point (main.ts) and nowhere else. It keeps a service command alive through
 * one known postgres.js defect (3.4.9, porsager/postgres#1154, #1208): when
 * PostgreSQL terminates a session inside a transaction, the driver's ROLLBACK
 * write throws a TypeError from `nextWrite` that no caller can catch, while
 * the transaction itself fails as `store.unavailable` and is retried. That
 * one error, as store-pg's `isPgWriteAfterClose` recognises it (the guard an
 * embedding application installs, `guardPgWriteAfterClose`, uses the same),
 * is reported in one line and ignored. Any other uncaught exception ends the
 * process with one line and exit 70 (internal), not with a stack trace.
 */
export function guardUncaughtExceptions(stderr: Writer, exit: (code: number) => void): void {
  const fail = (error: unknown): void => {
    const message = error instanceof Error ? error.message : String(error)
    stderr.write(`evtctl: cli.internal: uncaught exception: ${message.split('\n')[0]}\n`)
    exit(70)
  }
  process.on('uncaughtException', (error) => {
    // Loaded on first use, as above; a process that meets the defect has loaded the driver already.
    void import('@eventplane/store-pg').then(
      ({ PG_WRITE_AFTER_CLOSE_WARNING, isPgWriteAfterClose }) => {
        if (isPgWriteAfterClose(error)) stderr.write(`evtctl: warning: ${PG_WRITE_AFTER_CLOSE_WARNING}\n`)
        else fail(error)
      },
      () => fail(error),
    )
  })
}
