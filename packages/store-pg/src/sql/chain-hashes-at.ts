import type { Sql } from 'postgres'

export interface StoredHashAt {
  category: string
  stream_id: string
  version: string
  hash: Buffer | null
}

/**
 * The stored hash of each (category, stream, version) of a tenant, null where
 * the log has no such event; for a cross-tenant role (relay, operator).
 */
export function chainHashesAtSql(
  sql: Sql,
  tenant: string,
  at: readonly { category: string; stream_id: string; version: number }[],
): Promise<StoredHashAt[]> {
  return sql<StoredHashAt[]>`
    select p.category, p.stream_id, p.version::text as version, e.hash
      from unnest(${at.map((a) => a.category)}::text[], ${at.map((a) => a.stream_id)}::text[],
                  ${at.map((a) => a.version)}::bigint[]) as p(category, stream_id, version)
      left join eventplane.events e on e.tenant_id = ${tenant} and e.category = p.category
        and e.stream_id = p.stream_id and e.stream_version = p.version`
}
