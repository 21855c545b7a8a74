/**
 * pnpm tsx scripts/bench/open-transactions-cpu.ts [--rounds 20] [--calls 100]
 * — what classifying the open transactions by the horizon's rule costs the backend (store-pg
 * `openTransactions`, the statement the relay's guard runs every poll interval and its gauge every scrape)
 * against the list it replaced (0007's `eventplane.open_transactions()` alone, every database's sessions).
 * One relay-role backend; a transaction holding an xid in this database and one in another, open
 * throughout; the two statements alternated in blocks of `--calls`, the order swapped each round; the
 * backend's CPU per call (`/proc/<pid>/schedstat`), median and range over the rounds.
 */
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { ROLES, openTransactions } from '@eventplane/store-pg'
import { holdXid } from '@eventplane/store-pg/testing'
import { benchDatabase, median } from './lib.ts'

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '20' }, calls: { type: 'string', default: '100' } },
})
const rounds = Number(values.rounds)
const calls = Number(values.calls)
const cpuNs = (pid: number) => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0])

const db = await benchDatabase('open_tx')
const other = await benchDatabase('open_tx_other', { migrate: false })
try {
  const theirs = await holdXid(other.admin)
  const mine = await holdXid(db.admin)
  try {
    const sql = db.connect(ROLES.relay, 1)
    const pid = (await sql<{ pid: number }[]>`select pg_backend_pid() as pid`)[0]!.pid
    const variants: Record<string, () => Promise<unknown>> = {
      "0007's list (every database)": () =>
        sql`select pid, database, role, application, backend_xid, xact_start, age_ms::text as age_ms
              from eventplane.open_transactions()`,
      'classified (openTransactions)': () => openTransactions(sql),
    }
    const names = Object.keys(variants)
    for (const f of Object.values(variants)) for (let i = 0; i < 50; i++) await f()
    const per: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]))
    const load = [loadavg()[0]!]
    for (let r = 0; r < rounds; r++) {
      for (const name of r % 2 === 0 ? names : [...names].reverse()) {
        const t0 = cpuNs(pid)
        for (let i = 0; i < calls; i++) await variants[name]!()
        per[name]!.push((cpuNs(pid) - t0) / calls / 1000)
      }
    }
    load.push(loadavg()[0]!)
    const n = (await db.admin<{ n: number }[]>`select count(*)::int as n from pg_stat_activity`)[0]!.n
    console.log(`sessions in the cluster: ${n}; load ${load.map((l) => l.toFixed(1)).join(' → ')}`)
    console.log('| statement | backend CPU per call, µs (median) | range |')
    console.log('| --- | --- | --- |')
    for (const name of names) {
      const xs = per[name]!
      console.log(
        `| ${name} | ${median(xs).toFixed(0)} | ${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)} |`,
      )
    }
  } finally {
    await mine.release()
    await theirs.release()
  }
} finally {
  await other.drop()
  await db.drop()
}
