import type { Sql } from 'postgres'
import type { Checkpoint } from '@eventplane/core'

/**
 * How many committed events lie after `after` in the global order, of every
 * tenant the role may see or of one: a projection's progress total, a relay's
 * or projection's lag. Counts events the gap-safe read still holds back too.
 */
export async function countEventsAfterSql(sql: Sql, after: Checkpoint, tenant?: string): Promise<number> {
  const [row] = await sql<{ n: string }[]>`
    select count(*)::text as n from eventplane.events
     where (tx_id, global_position) > (${after.txId.toString()}::xid8, ${after.position.toString()}::bigint)
       and (${tenant ?? null}::text is null or tenant_id = ${tenant ?? null}::text)`
  return Number(row!.n)
}
