import type { Sql } from 'postgres'
import type { Checkpoint } from '@eventplane/core'

/**
 * Stores relay `name`'s checkpoint and the `created` timestamp of the stream
 * it refers to, only if this session holds the relay's lease (the fence: a
 * relay that lost its lease never moves the checkpoint), and never backwards
 * unless `reset`. True when written.
 */
export async function storeRelayCheckpointSql(
  sql: Sql,
  name: string,
  c: Checkpoint,
  streamCreated: string,
  reset: boolean,
): Promise<boolean> {
  const rows = await sql`
    insert into eventplane.relay_checkpoints as rc (name, tx_id, global_position, updated_at, stream_created)
    select ${name}, ${c.txId.toString()}::xid8, ${c.position.toString()}::bigint, now(), ${streamCreated}
     where eventplane.holds_relay_lease(${name})
    on conflict (name) do update
       set tx_id = excluded.tx_id, global_position = excluded.global_position, updated_at = excluded.updated_at,
           stream_created = excluded.stream_created
     where ${reset} or (rc.tx_id, rc.global_position) <= (excluded.tx_id, excluded.global_position)
    returning 1`
  return rows.length === 1
}
