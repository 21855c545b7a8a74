import type { Sql } from 'postgres'

export interface RelayCheckpointRow {
  tx_id: string
  global_position: string
  stream_created: string | null
}

/** The stored checkpoint row of relay `name`, if any. */
export async function loadRelayCheckpointSql(sql: Sql, name: string): Promise<RelayCheckpointRow | undefined> {
  const [row] = await sql<RelayCheckpointRow[]>`
    select tx_id::text, global_position::text, stream_created from eventplane.relay_checkpoints where name = ${name}`
  return row
}
