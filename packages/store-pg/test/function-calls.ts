import type { Sql } from 'postgres'

/** eventplane.log_horizon as pg_stat_get_xact_function_calls names it (migrations/0018). */
export const LOG_HORIZON = 'eventplane.log_horizon(pg_snapshot,xid8,bigint)'

/**
 * How many times `read` calls the function `fn` (a regprocedure text such as
 * {@link LOG_HORIZON}): `read` runs in a transaction of its own on `sql`, and
 * pg_stat_get_xact_function_calls is asked inside it before and after, so the
 * count is that transaction's alone. The database needs `track_functions =
 * 'all'` (a SQL function is counted only when it is not inlined). Test and
 * bench support, not exported by the package.
 */
export async function functionCallsOf(sql: Sql, fn: string, read: (tx: Sql) => Promise<unknown>): Promise<number> {
  return sql.begin(async (tx) => {
    const calls = async () => {
      const [r] = await tx<{ n: string | null }[]>`
        select pg_stat_get_xact_function_calls(${fn}::regprocedure)::text as n`
      return Number(r!.n ?? 0)
    }
    const before = await calls()
    await read(tx as unknown as Sql)
    return (await calls()) - before
  })
}
