import type { Sql } from 'postgres'
import { holdTransaction } from './hold-transaction.ts'

/** A transaction holding an xid: the gap-safe read of its database's log stops before it until `release()`. */
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
export function holdXid(admin: Sql): Promise<HeldXid> {
  return holdTransaction(admin, async (session) => {
    const [row] = await session<{ xid: string; pid: number }[]>`
      select pg_current_xact_id()::text as xid, pg_backend_pid() as pid`
    return { xid: row!.xid, pid: row!.pid }
  })
}
