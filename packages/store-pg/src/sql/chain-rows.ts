import type { Sql } from 'postgres'

/** A row of eventplane.chain_rows as postgres.js returns it (int8 and xid8 as strings). */
export interface ChainRowRaw {
  tenant_id: string
  category: string
  stream_id: string
  stream_version: string
  event_id: string
  kind: string
  type: string
  schema_version: number
  data: string
  correlation_id: string
  causation_id: string | null
  caused_by: string
  occurred_at: string
  hash: Buffer | null
  global_position: string
  tx_id: string
}

/** The key a page of chain rows continues after: (tenant, category, stream, version). */
export interface ChainKey {
  tenant: string
  category: string
  stream_id: string
  version: number
}

/**
 * One page of events in (tenant, category, stream, version) order after `after`:
 * all tenants the role sees (`tenant` undefined), one tenant, or one stream.
 */
export function chainRowsSql(
  sql: Sql,
  scope: { tenant?: string; category?: string; stream_id?: string },
  after: ChainKey,
  limit: number,
): Promise<ChainRowRaw[]> {
  return sql<ChainRowRaw[]>`
    select * from eventplane.chain_rows(${scope.tenant ?? null}, ${scope.category ?? null}, ${scope.stream_id ?? null},
      ${after.tenant}, ${after.category}, ${after.stream_id}, ${after.version}, ${limit})`
}
