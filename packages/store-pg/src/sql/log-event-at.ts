import type { Sql } from 'postgres'

/** An event as a log message's headers name it: its id, tenant and place in the log order. */
export interface LogEventRef {
  eventId: string
  tenant: string
  txId: bigint
  position: bigint
}

/**
 * Whether the log holds exactly this event: id and tenant at that
 * `(tx_id, global_position)`, found through the log order's index. The
 * relay's check of a stream's last message before it resumes after it
 * (needs a cross-tenant role).
 */
export async function logEventAtSql(sql: Sql, ref: LogEventRef): Promise<boolean> {
  const rows = await sql`
    select 1 from eventplane.events
     where (tx_id, global_position) = (${ref.txId.toString()}::xid8, ${ref.position.toString()}::bigint)
       and event_id = ${ref.eventId} and tenant_id = ${ref.tenant}`
  return rows.length === 1
}
