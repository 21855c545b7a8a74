import type { Sql } from 'postgres'
import type { Checkpoint } from '@eventplane/core'

/**
 * Stores relay `name`'s checkpoint and the `created` timestamp of the stream
 * it refers to, only if this session holds the relay's lease (the fence: a
 * relay that lost its lease never moves the checkpoint), and never backwards
 * unless `reset`. True when written.
 *
 * It commits with `synchronous_commit = off`: the write takes a transaction
 * id, and while a synchronous commit waits for its WAL flush that id is still
 * running, so it would hold the gap-safe read back (DESIGN §3) for every event
 * appended meanwhile, and nothing notifies the relay when it ends (issue 15).
 * A checkpoint lost in a PostgreSQL crash (at most ~3 × wal_writer_delay of
 * them) only moves it back, and a relay resumes after the stream's last
 * message anyway (bus-nats `resumePoint`): nothing republished, never a skip.
 */
export async function storeRelayCheckpointSql(
  sql: Sql,
  name: string,
  c: Checkpoint,
  streamCreated: string,
  reset: boolean,
): Promise<boolean> {
  const rows = await sql`
    with async_commit as (select set_config('synchronous_commit', 'off', true))
    insert into eventplane.relay_checkpoints as rc (name, tx_id, global_position, updated_at, stream_created)
    select ${name}, ${c.txId.toString()}::xid8, ${c.position.toString()}::bigint, now(), ${streamCreated}
      from async_commit
     where eventplane.holds_relay_lease(${name})
    on conflict (name) do update
       set tx_id = excluded.tx_id, global_position = excluded.global_position, updated_at = excluded.updated_at,
           stream_created = excluded.stream_created
     where ${reset} or (rc.tx_id, rc.global_position) <= (excluded.tx_id, excluded.global_position)
    returning 1`
  return rows.length === 1
}
