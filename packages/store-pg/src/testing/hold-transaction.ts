import type { ReservedSql, Sql } from 'postgres'

/** What a held transaction gives back: `T` and the way to end it. */
export type Held<T> = T & {
  /** Rolls the transaction back. Idempotent. */
  release(): Promise<void>
  /** Commits the transaction instead (a `release()` after it does nothing). */
  commit(): Promise<void>
}

/**
 * Begins a transaction on a reserved connection of `admin`, runs `start` in
 * it and keeps it open until `release()` rolls it back (or `commit()` commits
 * it); a failing `start` rolls back at once. The skeleton of holdStream and holdXid.
 */
export async function holdTransaction<T extends object>(
  admin: Sql,
  start: (session: ReservedSql) => Promise<T>,
): Promise<Held<T>> {
  const session = await admin.reserve()
  try {
    await session`begin`
    const value = await start(session)
    let ended = false
    const end = async (how: 'commit' | 'rollback'): Promise<void> => {
      if (ended) return
      ended = true
      try {
        await session.unsafe(how)
      } finally {
        session.release()
      }
    }
    return { ...value, release: () => end('rollback'), commit: () => end('commit') }
  } catch (e) {
    await session`rollback`.catch(() => {})
    session.release()
    throw e
  }
}
