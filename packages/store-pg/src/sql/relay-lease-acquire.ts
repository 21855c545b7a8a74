import type { Sql } from 'postgres'
import type { RelayLockKey } from '../relay-lock-key.ts'

/** Tries once to take relay `key`'s session advisory lock on this session. */
export async function acquireRelayLeaseSql(sql: Sql, key: RelayLockKey): Promise<boolean> {
  const [row] = await sql<{ locked: boolean }[]>`select pg_try_advisory_lock(${key.key}::bigint) as locked`
  return row?.locked === true
}
