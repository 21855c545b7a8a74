import type { Sql } from 'postgres'

/** Gives relay `name`'s lease up if this session holds it, so a standby takes over at once. */
export async function releaseRelayLeaseSql(sql: Sql, name: string): Promise<void> {
  await sql`
    update eventplane.relay_leases set holder_pid = null, holder_started = null
     where name = ${name} and eventplane.holds_relay_lease(${name})`
}
