import type { Sql, TransactionSql } from 'postgres'
import type { Checkpoint } from '@eventplane/core'

/** Which events to count; an omitted field matches everything (a projection's filter). */
export interface EventCountFilter {
  tenant?: string
  kinds?: readonly string[]
  categories?: readonly string[]
  types?: readonly string[]
}

/**
 * How many committed events matching `filter` lie in `(after, upTo]` of the
 * global order: one range scan of events_global_order_idx, the other columns
 * checked on the rows found. A projection's live path compares it with the
 * events it was delivered, to prove none was skipped.
 */
export async function countEventsBetweenSql(
  sql: Sql | TransactionSql,
  after: Checkpoint,
  upTo: Checkpoint,
  filter: EventCountFilter = {},
): Promise<number> {
  const list = (values: readonly string[] | undefined) => (values === undefined ? null : sql.array([...values]))
  const [row] = await sql<{ n: string }[]>`
    select count(*)::text as n from eventplane.events
     where (tx_id, global_position) > (${after.txId.toString()}::xid8, ${after.position.toString()}::bigint)
       and (tx_id, global_position) <= (${upTo.txId.toString()}::xid8, ${upTo.position.toString()}::bigint)
       and (${filter.tenant ?? null}::text is null or tenant_id = ${filter.tenant ?? null}::text)
       and (${list(filter.kinds)}::text[] is null or kind = any(${list(filter.kinds)}::text[]))
       and (${list(filter.categories)}::text[] is null or category = any(${list(filter.categories)}::text[]))
       and (${list(filter.types)}::text[] is null or type = any(${list(filter.types)}::text[]))`
  return Number(row!.n)
}
