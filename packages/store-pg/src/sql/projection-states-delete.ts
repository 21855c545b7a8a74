import type { Sql } from 'postgres'

/**
 * Deletes up to `limit` states of `projection` that belong to no generation
 * anyone reads or writes: neither the live one nor that of the rebuild in
 * progress (what a finished, restarted or version-changed rebuild left
 * behind). Bounded, so no transaction grows with the output; returns how many went.
 */
export async function deleteStaleProjectionStatesSql(sql: Sql, projection: string, limit: number): Promise<number> {
  const rows = await sql`
    delete from eventplane.projection_state s
     using (select x.generation, x.tenant_id, x.key from eventplane.projection_state x
             where x.projection = ${projection}
               and x.generation <> eventplane.projection_live_generation(${projection})
               and x.generation <> coalesce(
                     (select r.generation from eventplane.projection_rebuilds r where r.projection = ${projection}), 0)
             limit ${limit}) d
     where s.projection = ${projection} and s.generation = d.generation
       and s.tenant_id = d.tenant_id and s.key = d.key`
  return rows.count
}
