import type { Sql } from 'postgres'
import type { RelayLockKey } from '../relay-lock-key.ts'

/** True while this session holds relay `key`'s advisory lock. */
export async function relayLeaseHeldSql(sql: Sql, key: RelayLockKey): Promise<boolean> {
  const rows = await sql`
    select 1 from pg_locks
     where locktype = 'advisory' and granted and pid = pg_backend_pid() and objsubid = 1
       and classid = ${key.classid}::oid and objid = ${key.objid}::oid`
  return rows.length === 1
}
