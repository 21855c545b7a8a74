import type { Sql } from 'postgres'

/** Gives up every advisory lock of this session (the lease session holds only its relay's). */
export async function releaseRelayLeaseSql(sql: Sql): Promise<void> {
  await sql`select pg_advisory_unlock_all()`
}
