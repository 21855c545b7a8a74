import type { Sql } from 'postgres'

/**
 * Takes relay `name`'s lease for this session unless another live session
 * holds it (eventplane.acquire_relay_lease, migrations/0006_relay_leases.sql).
 * Only eventplane_relay may take or lock a lease row.
 */
export async function acquireRelayLeaseSql(sql: Sql, name: string): Promise<boolean> {
  const [row] = await sql<{ acquired: boolean }[]>`select eventplane.acquire_relay_lease(${name}) as acquired`
  return row?.acquired === true
}
