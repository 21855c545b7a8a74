import type { Sql, TransactionSql } from 'postgres'
import { validateTenant } from '@eventplane/core'
import { mapPgError } from './pg-errors.ts'

/**
 * Runs `fn` in a transaction whose tenant is `tenant` (set_config local to the
 * transaction, so it never leaks to the next user of a pooled connection).
 * Rolls back when `fn` throws.
 */
export async function withTenant<T>(sql: Sql, tenant: string, fn: (tx: TransactionSql) => Promise<T>): Promise<T> {
  validateTenant(tenant)
  try {
    return (await sql.begin(async (tx) => {
      await tx`select set_config('eventplane.tenant', ${tenant}, true)`
      return fn(tx)
    })) as T
  } catch (e) {
    throw mapPgError(e)
  }
}
