/**
 * pnpm tsx scripts/bench/log-horizon.ts [--rounds 7] [--calls 500] [--latency-rounds 2] [--events 60]
 * — what migration 0018 (the gap-safe horizon limited to this log's database) costs and buys.
 *
 * Read cost: the relay's read (store-pg `readAllTextSql`'s statement, prepared, rows as arrays) with the
 * cluster-wide predicate (`tx_id < pg_snapshot_xmin(pg_current_snapshot())`) and with 0018's
 * (`tx_id < eventplane.log_horizon(pg_current_snapshot(), checkpoint)`), alternated in blocks of
 * `--calls` reads, the order swapped each round: the backend's CPU per read (`/proc/<pid>/schedstat`)
 * and this process's. 10,000 events, then a transaction holding an xid in another database, open
 * throughout, then 100 more events (behind it for the old rule). Two shapes: caught up (after the last
 * event: no rows, what a live relay reads most; log_horizon returns at its index probe) and the first
 * page of 100 (the same rows both ways; log_horizon reads the sessions: rows wait above xmin).
 *
 * Latency: a relay on its own nats-server, `--events` appends at 20/s while a transaction in another
 * database holds an xid (taken before the first append, ended after the last), append → seen by a core
 * subscription; "before" runs the same relay with log_horizon's body replaced by the old rule
 * (`pg_snapshot_xmin`), "after" with 0018's; alternated.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { EventFactory } from '@eventplane/core'
import { MIGRATIONS_DIR, PgEventStore, ROLES } from '@eventplane/store-pg'
import { holdXid } from '@eventplane/store-pg/testing'
import { EVENT_HEADERS, Relay } from '@eventplane/bus-nats'
import { startNatsServer } from '@eventplane/bus-nats/testing'
import { loadAroundForeignXid, relayRead } from './horizon-read.ts'
import { argValue, backendCpuNs, backendPid, benchDatabase, loadAvg, median, percentile } from './lib.ts'

const ROUNDS = argValue('rounds', 7)
const CALLS = argValue('calls', 500)
const LATENCY_ROUNDS = argValue('latency-rounds', 2)
const EVENTS = argValue('events', 60)

const OLD = 'pg_snapshot_xmin(pg_current_snapshot())'
const NEW = 'eventplane.log_horizon(pg_current_snapshot(), $1::xid8, $2::bigint)'
const OLD_BODY = `CREATE OR REPLACE FUNCTION eventplane.log_horizon(
    p_snapshot pg_snapshot, p_after_tx xid8 DEFAULT '0', p_after_position bigint DEFAULT 0)
  RETURNS xid8 LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN pg_catalog.pg_snapshot_xmin(p_snapshot); END $$`
const NEW_BODY = readFileSync(join(MIGRATIONS_DIR, '0018_log_horizon.sql'), 'utf8')

const db = await benchDatabase('horizon')
const other = await benchDatabase('horizon_other', { migrate: false })
const load = await db.admin<{ l: string }[]>`select pg_catalog.current_setting('server_version') as l`
console.log(`PostgreSQL ${load[0]!.l}, load ${loadAvg()}`)
try {
  const held = await loadAroundForeignXid(db, other)
  const relaySql = db.connect(ROLES.relay, 1)
  const pid = await backendPid(relaySql)
  const [last] = await db.admin<{ tx: string; pos: string }[]>`
    select tx_id::text as tx, global_position::text as pos from eventplane.events
     order by tx_id desc, global_position desc limit 1`
  const shapes = { 'caught up': [last!.tx, last!.pos], 'page of 100': ['0', '0'] } as const
  const results: Record<string, { backend: number[]; client: number[]; rows: number; xip: number[] }> = {}
  for (let round = 0; round < ROUNDS + 1; round++) {
    for (const [shape, after] of Object.entries(shapes)) {
      const order = round % 2 === 0 ? [OLD, NEW] : [NEW, OLD]
      for (const horizon of order) {
        const key = `${shape} ${horizon === OLD ? 'before' : 'after'}`
        const [x] = await relaySql<{ n: number }[]>`
          select count(*)::int as n from pg_snapshot_xip(pg_current_snapshot())`
        let rows = 0
        const cpu0 = process.cpuUsage()
        const ns0 = backendCpuNs(pid)
        for (let i = 0; i < CALLS; i++) rows = (await relayRead(relaySql, horizon, after)).length
        const backendUs = (backendCpuNs(pid) - ns0) / 1000 / CALLS
        const c = process.cpuUsage(cpu0)
        if (round === 0) continue // warm-up
        results[key] ??= { backend: [], client: [], rows, xip: [] }
        results[key].backend.push(backendUs)
        results[key].client.push((c.user + c.system) / CALLS)
        results[key].xip.push(x!.n)
      }
    }
  }
  for (const [key, r] of Object.entries(results)) {
    console.log(
      `${key.padEnd(20)} rows ${String(r.rows).padStart(3)}  backend µs/read median ${median(r.backend).toFixed(1)}` +
        ` (${r.backend.map((v) => v.toFixed(0)).join(' ')})  client µs/read ${median(r.client).toFixed(1)}` +
        `  xids running ${Math.min(...r.xip)}–${Math.max(...r.xip)}`,
    )
  }
  const [sessions] = await db.admin<{ n: number }[]>`select count(*)::int as n from pg_stat_activity`
  console.log(`sessions in pg_stat_activity: ${sessions!.n}`)
  await held.release()

  // Latency with a transaction held open in another database.
  const nats = await startNatsServer({ withAuth: false })
  const nc = await nats.connect()
  const writer = new PgEventStore(db.connect(ROLES.intentWriter, 2))
  const f = EventFactory.forTenant('acme', { causedBy: 'user:bench' })
  const seen = new Map<string, number>()
  const sub = nc.subscribe('eventplane.>', {
    callback: (_e, msg) => {
      const id = msg.headers?.get(EVENT_HEADERS.msgId)
      if (id) seen.set(id, performance.now())
    },
  })
  try {
    for (let round = 0; round < LATENCY_ROUNDS * 2; round++) {
      const variant = round % 2 === 0 ? 'before' : 'after'
      await db.admin.unsafe(variant === 'before' ? OLD_BODY : NEW_BODY)
      const relay = new Relay({ sql: db.connect(ROLES.relay, 3), nc, name: 'bench' })
      relay.start()
      while (relay.state !== 'active') await new Promise((r) => setTimeout(r, 20))
      const hold = await holdXid(other.admin)
      const appended = new Map<string, number>()
      const t0 = performance.now()
      for (let i = 0; i < EVENTS; i++) {
        const s = { tenant: 'acme', category: 'deployment', id: `r${round}-${i}` }
        const e = f.intent(s, 'scaled', { i })
        appended.set(e.event_id, performance.now())
        await writer.append(s, [e])
        const next = t0 + (i + 1) * 50
        await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())))
      }
      const heldMs = performance.now() - t0
      await hold.release()
      while ([...appended.keys()].some((id) => !seen.has(id))) await new Promise((r) => setTimeout(r, 20))
      await relay.stop()
      const lat = [...appended].map(([id, at]) => seen.get(id)! - at)
      console.log(
        `latency ${variant.padEnd(6)} held ${heldMs.toFixed(0)} ms: append → bus p50 ${median(lat).toFixed(1)}` +
          ` p90 ${percentile(lat, 90).toFixed(1)} max ${Math.max(...lat).toFixed(1)} ms (${lat.length} events)`,
      )
    }
  } finally {
    sub.unsubscribe()
    await nc.close()
    await nats.stop()
  }
} finally {
  await other.drop()
  await db.drop()
}
console.log(`load ${loadAvg()}`)
process.exit(0)
