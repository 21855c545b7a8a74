import type { Sql, TransactionSql } from 'postgres'

/** The schema SQL projections' live tables are in. */
export const VIEWS_SCHEMA = 'eventplane_views'

/** Creates (when missing) the shadow schema a rebuild of `generation` builds its tables in; returns its name. */
export async function ensureProjectionShadowSql(sql: Sql, projection: string, generation: number): Promise<string> {
  const [row] = await sql<{ schema: string }[]>`
    select eventplane.ensure_projection_shadow(${projection}, ${generation}) as schema`
  return row!.schema
}

/** Drops the shadow schemas of `projection` but the one of the rebuild in progress; returns how many. */
export async function dropStaleProjectionShadowsSql(sql: Sql, projection: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select eventplane.drop_stale_projection_shadows(${projection}) as n`
  return row!.n
}

/** Sets `search_path` to `schema` for the rest of `tx`: the projection's unqualified table names resolve there. */
export async function useProjectionSchemaSql(tx: TransactionSql, schema: string): Promise<void> {
  await tx`select set_config('search_path', ${schema}, true)`
}

/** The tables (plain and partitioned) in `schema`. */
export async function shadowTablesSql(sql: Sql | TransactionSql, schema: string): Promise<string[]> {
  const rows = await sql<{ name: string }[]>`
    select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = ${schema} and c.relkind in ('r', 'p') and not c.relispartition order by 1`
  return rows.map((r) => r.name)
}

/** In `tx`: moves every table of `schema` into eventplane_views (indexes, policies, grants and owned sequences follow). */
export async function moveShadowTablesSql(tx: TransactionSql, schema: string): Promise<number> {
  const tables = await shadowTablesSql(tx, schema)
  for (const t of tables) await tx`alter table ${tx(schema)}.${tx(t)} set schema ${tx(VIEWS_SCHEMA)}`
  return tables.length
}
