import type { Sql } from 'postgres'
import { validateTenant } from '@eventplane/core'
import { mapPgError } from '../pg-errors.ts'

/**
 * True when `causationId` names an event of `tenant` in the correlation
 * chain `correlationId`, as the pool's role sees it with the tenant set for
 * this one statement (`eventplane.causation_in_chain`, 0009_lineage.sql).
 * False alike for an id that does not exist and for another tenant's event:
 * the answer never tells one tenant anything about another's events. One
 * round trip; errors typed like every store call.
 */
export async function causationInChain(
  sql: Sql,
  tenant: string,
  causationId: string,
  correlationId: string,
): Promise<boolean> {
  validateTenant(tenant)
  try {
    const [row] = await sql<{ ok: boolean }[]>`
      select eventplane.causation_in_chain(${tenant}, ${causationId}::uuid, ${correlationId}::uuid) as ok`
    return row!.ok === true
  } catch (e) {
    throw mapPgError(e)
  }
}
