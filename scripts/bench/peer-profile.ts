/**
 * pnpm tsx scripts/bench/peer-profile.ts [--events 1] [--seconds 15] [--out /tmp/peer-prof] — where each
 * backend's CPU goes per append, bench:peer's peer (Emmett) and ours side by side: one connection per side,
 * appends of `--events` events to four streams in a loop, `perf record -g` attached to that side's backend
 * for `--seconds`, peer then ours, into `<out>-peer.data` and `<out>-ours.data` (needs perf and the right to
 * trace the postgres user's processes). Read them with `perf report -i <file> --no-children --sort sym`.
 * Prints each side's appends and backend CPU per append while recorded.
 */
import { spawn } from 'node:child_process'
import { EventFactory } from '@eventplane/core'
import { PgEventStore, ROLES, connectPg } from '@eventplane/store-pg'
import { BENCH_DATA, argString, argValue, backendCpuNs, backendPid, benchChild, benchDatabase } from './lib.ts'
import { loadPeer } from './peer-install.ts'

const EVENTS = argValue('events', 1)
const SECONDS = argValue('seconds', 15)
const OUT = argString('out', '/tmp/peer-prof')

const peer = loadPeer()
const db = await benchDatabase('peer_prof')
const peerDb = await benchDatabase('peer_prof_emmett', { migrate: false })
const sql = connectPg(db.roleUrl(ROLES.intentWriter), { max: 1, applicationName: `peer_prof_${process.pid}` })
const opened = peer.open(peerDb.url, 1, `peer_prof_${process.pid}`)
try {
  const ours = new PgEventStore(sql)
  const factory = EventFactory.forTenant('bench', { causedBy: 'user:bench' })
  await opened.store.schema.migrate()
  const sides = {
    peer: (i: number) =>
      opened.store.appendToStream(
        `deployment-p${i % 4}`,
        Array.from({ length: EVENTS }, () => ({ type: 'created', data: BENCH_DATA })),
      ),
    ours: (i: number) => {
      const s = { tenant: 'bench', category: 'deployment', id: `p${i % 4}` }
      return ours.append(
        s,
        Array.from({ length: EVENTS }, () => factory.intent(s, 'created', BENCH_DATA)),
      )
    },
  }
  // Each side's one backend: ours through postgres.js, the peer's through its node-postgres pool.
  await sides.peer(0)
  await sides.ours(0)
  const pids = {
    ours: await backendPid(sql),
    peer: Number(
      (
        await db.admin<{ pid: number }[]>`select pid from pg_stat_activity where datname = ${peerDb.name}
          and application_name = ${`peer_prof_${process.pid}`}`
      )[0]!.pid,
    ),
  }
  for (const side of ['peer', 'ours'] as const) {
    for (let i = 0; i < 300; i++) await sides[side](i)
    const perf = benchChild(
      spawn(
        'perf',
        ['record', '-q', '-g', '-p', String(pids[side]), '-o', `${OUT}-${side}.data`, '--', 'sleep', String(SECONDS)],
        { stdio: 'inherit' },
      ),
    )
    const done = new Promise((resolve) => perf.on('exit', resolve))
    let stop = false
    void done.then(() => {
      stop = true
    })
    const cpu = backendCpuNs(pids[side])
    let n = 0
    while (!stop) await sides[side](n++)
    const us = (backendCpuNs(pids[side]) - cpu) / 1000 / n
    console.log(`${side}: ${n} appends of ${EVENTS} in ${SECONDS} s, backend ${us.toFixed(0)} µs per append`)
  }
} finally {
  await sql.end({ timeout: 1 })
  await opened.pool.end()
  await Promise.all([db.drop(), peerDb.drop()])
}
