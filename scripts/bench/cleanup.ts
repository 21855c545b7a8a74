/**
 * pnpm bench:cleanup [--dry-run] — drops the databases benches left behind: every `ep_bench_*` database on
 * EVENTPLANE_DATABASE_URL's server whose bench process is no longer running (its pid is in the name:
 * `ep_bench_<name>_<pid>_<random>`). A bench interrupted with Ctrl-C or SIGTERM drops its own (lib.ts
 * `benchDatabase`); this is for a run that was SIGKILLed, or whose machine went down. A bench still running,
 * here or in another clone on this machine, keeps its database. nats-servers need no cleaning: the kernel kills
 * a bench's own when the bench dies (`dieWithParent`).
 */
import { DEFAULT_DATABASE_URL, connectPg } from '@eventplane/store-pg'
import { closePool } from '@eventplane/store-pg/testing'
import { BENCH_DB_PREFIX } from './lib.ts'

const dryRun = process.argv.includes('--dry-run')

/** True while process `pid` exists (EPERM: it does, as another user's). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

const server = connectPg(process.env.EVENTPLANE_DATABASE_URL ?? DEFAULT_DATABASE_URL, { max: 1 })
try {
  const rows = await server<{ name: string; size: string }[]>`
    select datname as name, pg_size_pretty(pg_database_size(datname)) as size from pg_database
     where starts_with(datname, ${BENCH_DB_PREFIX}) order by datname`
  let dropped = 0
  for (const { name, size } of rows) {
    const pid = Number(/_(\d+)_[0-9a-f]{8}$/.exec(name)?.[1])
    if (Number.isInteger(pid) && running(pid)) {
      console.log(`kept    ${name} (${size}): process ${pid} is running`)
      continue
    }
    if (!dryRun) await server.unsafe(`drop database if exists "${name}" with (force)`)
    console.log(`${dryRun ? 'would drop' : 'dropped'} ${name} (${size})`)
    dropped++
  }
  console.log(`${rows.length} bench database(s), ${dropped} ${dryRun ? 'to drop' : 'dropped'}`)
} finally {
  await closePool(server)
}
