import type { Sql } from 'postgres'

/** One stream of a tenant as listed: its name and last event. */
export interface StreamRow {
  category: string
  stream_id: string
  stream_version: string
  last_type: string
  last_recorded_at: Date
}

/**
 * One page of a tenant's streams after `(afterCategory, afterStream)` in
 * (category, id) order, optionally of one category; the tenant is set for
 * this statement only. Empty strings start at the beginning (names are never empty).
 */
export function listStreamsSql(
  sql: Sql,
  tenant: string,
  category: string | null,
  afterCategory: string,
  afterStream: string,
  limit: number,
): Promise<StreamRow[]> {
  return sql<StreamRow[]>`
    select * from eventplane.list_streams(${tenant}, ${category}, ${afterCategory}, ${afterStream}, ${limit})`
}
