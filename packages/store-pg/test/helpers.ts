import { EventFactory } from '@eventplane/core'
import type { Sql, TransactionSql } from 'postgres'

/** A root factory for one tenant, acting as a test user. */
export function factoryFor(tenant: string, causedBy = 'user:test'): EventFactory {
  return EventFactory.forTenant(tenant, { causedBy })
}

export const stream = (tenant: string, id: string, category = 'deployment') => ({ tenant, category, id })

/**
 * Recomputes the stored hashes of stream `id` from version `from` on, as an attacker who knows the scheme
 * would (the caller has disabled the log's triggers, as a superuser).
 */
export async function rechain(sql: Sql | TransactionSql, id: string, from: number): Promise<void> {
  const [{ n }] = (await sql`select max(stream_version)::int as n from eventplane.events where stream_id = ${id}`) as [
    { n: number },
  ]
  for (let v = from; v <= n; v++) {
    await sql`update eventplane.events e set hash = eventplane.chain_link(
        (select p.hash from eventplane.events p where p.tenant_id = e.tenant_id and p.category = e.category
            and p.stream_id = e.stream_id and p.stream_version = e.stream_version - 1), e)
      where e.stream_id = ${id} and e.stream_version = ${v}`
  }
}
