import type { Sql } from 'postgres'

/** True while this session is the one relay `name`'s lease row names. */
export async function relayLeaseHeldSql(sql: Sql, name: string): Promise<boolean> {
  const [row] = await sql<{ held: boolean }[]>`select eventplane.holds_relay_lease(${name}) as held`
  return row?.held === true
}
