import type { Sql } from 'postgres'

/**
 * The tenants that have events, in byte order: one probe of the stream index
 * per tenant (a skip scan), so the cost grows with the number of tenants, not
 * of events. A cross-tenant role (relay, operator) sees them all; any other
 * role sees what its row level security lets it.
 */
export async function chainTenantsSql(sql: Sql): Promise<string[]> {
  const rows = await sql<{ tenant_id: string }[]>`
    with recursive tenants as (
      (select e.tenant_id from eventplane.events e order by e.tenant_id limit 1)
      union all
      select next.tenant_id from tenants t, lateral (
        select e.tenant_id from eventplane.events e where e.tenant_id > t.tenant_id order by e.tenant_id limit 1) next
    )
    select tenant_id from tenants`
  return rows.map((r) => r.tenant_id)
}
