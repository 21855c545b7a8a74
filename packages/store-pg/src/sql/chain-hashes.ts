import type { Sql } from 'postgres'

/** The stored hashes of some events of a tenant, by event id (eventplane.chain_hashes). */
export async function chainHashesSql(
  sql: Sql,
  tenant: string,
  eventIds: readonly string[],
): Promise<Map<string, Buffer>> {
  const rows = await sql<{ event_id: string; hash: Buffer }[]>`
    select * from eventplane.chain_hashes(${tenant}, ${eventIds as string[]}::uuid[])`
  return new Map(rows.map((r) => [r.event_id, r.hash]))
}
