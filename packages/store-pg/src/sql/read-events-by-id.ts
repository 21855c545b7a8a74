import type { Sql, TransactionSql } from 'postgres'
import type { EventValues } from '../rows.ts'
import { EVENT_COLUMNS, eventValues } from './event-columns.ts'

/**
 * The stored events of one tenant among `eventIds` (through the event id's unique index), in log order;
 * ids not stored in the tenant are absent. Run with the tenant set (`withTenant`): row-level security
 * shows a writer only its tenant's rows.
 */
export function readEventsByIdSql(
  sql: Sql | TransactionSql,
  tenant: string,
  eventIds: readonly string[],
): Promise<EventValues[]> {
  return eventValues(sql`
    select ${sql.unsafe(EVENT_COLUMNS)} from eventplane.events e
     where e.event_id = any(${eventIds as string[]}::uuid[]) and e.tenant_id = ${tenant}
     order by e.tx_id, e.global_position`)
}
