import { type HeldXid, holdXid } from './hold-xid.ts'
import { perSuite } from './per-suite.ts'
import { type TestDatabase, createTestDatabase } from './test-database.ts'

/**
 * Another database of the same cluster, empty (not migrated), with a transaction holding an xid in it: older
 * than every event appended after it, and part of every snapshot's xmin on the cluster, yet it can never write
 * into a log of another database. What the horizon, the relay, `status` and the lag metrics must look past.
 */
export interface ForeignXid {
  /** The other database: hold more there with `holdXid(db.admin)`; its name is what listings show. */
  db: TestDatabase
  /** The held transaction's id (decimal). */
  xid: string
  /** Its backend. */
  pid: number
  /** Ends the transaction and drops the database. Idempotent. */
  drop(): Promise<void>
}

/** Creates a database named after `prefix` (no migrations) and opens a transaction there that holds an xid. */
export async function holdForeignXid(prefix: string): Promise<ForeignXid> {
  const db = await createTestDatabase(prefix, { migrate: false })
  let held: HeldXid
  try {
    held = await holdXid(db.admin)
  } catch (e) {
    await db.drop()
    throw e
  }
  return {
    db,
    xid: held.xid,
    pid: held.pid,
    async drop() {
      await held.release()
      await db.drop()
    },
  }
}

/** A {@link holdForeignXid} for the enclosing `describe`: held before its tests, dropped after them. */
export function useForeignXid(prefix: string): ForeignXid {
  return perSuite(
    () => holdForeignXid(prefix),
    (foreign) => foreign.drop(),
  )
}
