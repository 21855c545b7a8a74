import type { Sql } from 'postgres'

/** One reducer state of a projection: its tenant, key and state (jsonb, parsed). */
export interface ProjectionStateRow<S = unknown> {
  tenant_id: string
  key: string
  state: S
}

/** The stored states of `keys` in one generation (absent keys are simply missing), in one round trip. */
export function loadProjectionStatesSql<S>(
  sql: Sql,
  projection: string,
  generation: number,
  keys: readonly { tenant: string; key: string }[],
): Promise<ProjectionStateRow<S>[]> {
  return sql<ProjectionStateRow<S>[]>`
    select s.tenant_id, s.key, s.state from eventplane.projection_state s
      join unnest(${sql.array(keys.map((k) => k.tenant))}::text[], ${sql.array(keys.map((k) => k.key))}::text[]) as w(t, k)
        on s.tenant_id = w.t and s.key = w.k
     where s.projection = ${projection} and s.generation = ${generation}`
}
