import type { Sql } from 'postgres'

export interface ChainHeadRow {
  at_tx_id: string
  at_position: string
  category: string
  stream_id: string
  stream_version: string
  hash: Buffer
}

/** Each stream's last version and hash at the tenant's gap-safe head (eventplane.chain_heads). */
export function chainHeadsSql(sql: Sql, tenant: string): Promise<ChainHeadRow[]> {
  return sql<ChainHeadRow[]>`select * from eventplane.chain_heads(${tenant})`
}
