import assert from 'node:assert/strict'
import { after, before } from 'node:test'
import { EventFactory } from '@eventplane/core'
import { ROLES, RelayLease } from '@eventplane/store-pg'
import { type TestDatabase, createTestDatabase } from '@eventplane/store-pg/testing'
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

/**
 * A relay-lease suite's test database (made before its tests, dropped after them) and the leases its tests
 * open, closed after the suite; `holderPid` reads the session a lease row names (null when none holds it).
 */
export function useLeaseSuite(prefix: string): {
  readonly db: TestDatabase
  lease(name: string): RelayLease
  holderPid(name: string): Promise<number | null>
} {
  let db: TestDatabase | undefined
  const leases: RelayLease[] = []
  const need = (): TestDatabase => db ?? assert.fail('useLeaseSuite: used outside its suite')
  before(async () => {
    db = await createTestDatabase(prefix)
  })
  after(async () => {
    await Promise.all(leases.map((l) => l.close()))
    await db?.drop()
  })
  return {
    get db() {
      return need()
    },
    lease(name) {
      const l = new RelayLease(need().connect(ROLES.relay, 1), name)
      leases.push(l)
      return l
    },
    async holderPid(name) {
      const rows = await need().admin<
        { pid: number | null }[]
      >`select holder_pid as pid from eventplane.relay_leases where name = ${name}`
      return rows[0]?.pid ?? null
    },
  }
}
