import type { Sql } from 'postgres'
import { ROLES } from '../connect.ts'

/**
 * Text only the relay's checkpoint write (`sql/relay-checkpoint-store.ts`) contains. The checkpoint's load and
 * the relay listing name `relay_checkpoints` too, so a pattern on the table name alone (`%relay_checkpoints%`)
 * also matches a relay still loading its checkpoint. `strpos`, not LIKE: `_` is no wildcard here.
 */
export const RELAY_CHECKPOINT_WRITE = 'insert into eventplane.relay_checkpoints as rc'

/**
 * Backend pids of the relay role's checkpoint writes running in `database` (as seen by `admin`, a superuser on
 * the server). A test that freezes a relay child waits for this to be empty: the writes it had sent then finish
 * in PostgreSQL, so the stored checkpoint is final before the relay is killed.
 */
export async function activeRelayCheckpointWrites(admin: Sql, database: string): Promise<number[]> {
  const rows = await admin<{ pid: number }[]>`
    select pid from pg_stat_activity
     where datname = ${database} and usename = ${ROLES.relay} and state = 'active'
       and strpos(query, ${RELAY_CHECKPOINT_WRITE}) > 0`
  return rows.map((r) => r.pid)
}
