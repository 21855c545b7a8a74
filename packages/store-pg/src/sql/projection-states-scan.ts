import type { Sql } from 'postgres'

/** A state as its canonical text: jsonb's own text form, stable for a given value. */
export interface ProjectionStateText {
  tenant_id: string
  key: string
  state: string
}

/**
 * Every state of one generation of `projection` (default: the live one) in a total order (tenant, then key, in byte
 * order: `collate "C"`), with the state as jsonb text, through a cursor of
 * `batchRows` rows so memory stays flat (the digest).
 */
export function scanProjectionStatesSql(
  sql: Sql,
  projection: string,
  generation: number | null,
  batchRows: number,
): AsyncIterable<ProjectionStateText[]> {
  return sql<ProjectionStateText[]>`
    select tenant_id, key, state::text as state from eventplane.projection_state
     where projection = ${projection}
       and generation = coalesce(${generation}::int, eventplane.projection_live_generation(${projection}))
     order by tenant_id collate "C", key collate "C"`.cursor(batchRows)
}
