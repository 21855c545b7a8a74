import { eventually } from './eventually.ts'
import type { TestDatabase } from './test-database.ts'

/**
 * Waits until a session of `db` logged in as `user` waits on an advisory lock (one the test holds), terminates it
 * (`pg_terminate_backend`) and waits until it is gone; returns its pid. `unless` ends the wait without terminating
 * anything (0): a process that exited meanwhile, say, for the caller to report. `what` names the wait in a timeout.
 */
export async function terminateLockWaiter(
  db: TestDatabase,
  user: string,
  what: string,
  unless: () => boolean = () => false,
): Promise<number> {
  let pid = 0
  await eventually(
    async () => {
      const r = await db.admin<{ pid: number }[]>`
        select pid from pg_stat_activity where datname = ${db.name} and usename = ${user} and wait_event = 'advisory'`
      pid = r[0]?.pid ?? 0
      return pid !== 0 || unless()
    },
    60_000,
    what,
  )
  if (pid === 0) return 0
  const [r] = await db.admin<{ ok: boolean }[]>`select pg_terminate_backend(${pid}) as ok`
  if (!r!.ok) throw new Error(`session ${pid} could not be terminated`)
  await eventually(
    async () => (await db.admin`select 1 from pg_stat_activity where pid = ${pid}`).length === 0,
    30_000,
    'the terminated session to be gone',
  )
  return pid
}
