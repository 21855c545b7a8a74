import type { Sql } from 'postgres'

/** A transaction holding an xid: the gap-safe read of the whole cluster stops before it until `release()`. */
export interface HeldXid {
  /** The transaction id it holds (decimal). */
  xid: string
  /** Its backend. */
  pid: number
  /** Ends the transaction (rollback): readers may pass again. Idempotent. */
  release(): Promise<void>
}

/**
 * Opens a transaction on a reserved connection of `admin` and takes an xid,
 * then holds it until `release()`: every event committed meanwhile has a
 * larger tx_id, so the relay, projections and `readAll` stop before them. For
 * tests of what holds the log back (status, lag metrics, the relay guard).
 */
export async function holdXid(admin: Sql): Promise<HeldXid> {
  const session = await admin.reserve()
  try {
    await session`begin`
    const [row] = await session<{ xid: string; pid: number }[]>`
      select pg_current_xact_id()::text as xid, pg_backend_pid() as pid`
    let released = false
    return {
      xid: row!.xid,
      pid: row!.pid,
      async release() {
        if (released) return
        released = true
        try {
          await session`rollback`
        } finally {
          session.release()
        }
      },
    }
  } catch (e) {
    await session`rollback`.catch(() => {})
    session.release()
    throw e
  }
}
