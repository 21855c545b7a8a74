import type { Sql } from 'postgres'
import type { EventValues } from '../rows.ts'
import { EVENT_COLUMNS, eventValues } from './event-columns.ts'

/**
 * The stored events of one tenant among `eventIds` (through the event id's unique index), in log order;
 * ids not stored in the tenant are absent. One statement, one round trip: the tenant is set for this
 * statement only, as the inlined reads of migration 0017 do (a one-row sub-select `s` that calls
 * set_config, the events read in a LATERAL sub-select filtered by `s.tenant`: a nested loop fetches `s`
 * first, so row-level security, which shows a writer only its tenant's rows, sees the tenant set).
 */
export function readEventsByIdSql(sql: Sql, tenant: string, eventIds: readonly string[]): Promise<EventValues[]> {
  return eventValues(sql`
    select ${sql.unsafe(EVENT_COLUMNS)}
      from (select set_config('eventplane.tenant', ${tenant}, true) as tenant) s,
      lateral (select * from eventplane.events e
                where e.event_id = any(${eventIds as string[]}::uuid[]) and e.tenant_id = s.tenant
                order by e.tx_id, e.global_position) e`)
}
