import type postgres from 'postgres'
import type { TransactionSql } from 'postgres'

/** Upserts states of one generation of `projection` in one statement, in the caller's (checkpoint) transaction. */
export async function saveProjectionStatesSql(
  tx: TransactionSql,
  projection: string,
  generation: number,
  states: readonly { tenant: string; key: string; state: unknown }[],
): Promise<void> {
  const rows = states.map((e) => ({ t: e.tenant, k: e.key, s: e.state }))
  await tx`
    insert into eventplane.projection_state (projection, generation, tenant_id, key, state)
    select ${projection}, ${generation}, x.t, x.k, x.s
      from jsonb_to_recordset(${tx.json(rows as unknown as postgres.JSONValue)}) as x(t text, k text, s jsonb)
    on conflict (projection, generation, tenant_id, key) do update set state = excluded.state`
}
