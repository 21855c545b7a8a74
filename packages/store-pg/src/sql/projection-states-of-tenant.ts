import type { TransactionSql } from 'postgres'

/** One tenant's states of `projection`'s live generation (optionally one key), by key; run where RLS has that tenant set. */
export function projectionStatesOfTenantSql(
  tx: TransactionSql,
  projection: string,
  tenant: string,
  key: string | null,
): Promise<{ key: string; state: unknown }[]> {
  return tx<{ key: string; state: unknown }[]>`
    select key, state from eventplane.projection_state
     where projection = ${projection} and generation = eventplane.projection_live_generation(${projection})
       and tenant_id = ${tenant} and (${key}::text is null or key = ${key})
     order by key`
}
