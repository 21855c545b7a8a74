import assert from 'node:assert/strict'
import { type Checkpoint, type RecordedEvent, START, compareCheckpoints } from '@eventplane/core'
import {
  type ProjectionRunner,
  defineReducerProjection,
  projectionDigest,
  rebuildProjection,
} from '@eventplane/runtime'
import { type Sql, loadRelayCheckpoint } from '@eventplane/store-pg'
import type { NatsConnection } from '@nats-io/transport-node'
import { eventually, streamMessages } from '../../../packages/bus-nats/test/fixtures.ts'
import type { Ledger } from './clients.ts'
import type { FaultSystem } from './system.ts'

/**
 * Per stream: how many events were applied and the last stream version seen.
 * Applied once each, `count === last`; a double effect makes `count` larger.
 */
export const faultCounter = defineReducerProjection({
  name: 'fault_counter',
  version: 1,
  initial: () => ({ count: 0, last: 0 }),
  apply: (s, e: RecordedEvent) => ({ count: s.count + 1, last: e.stream_version }),
  key: (e) => `${e.kind}/${e.stream.category}/${e.stream.id}`,
})

export interface LogRow {
  event_id: string
  tenant_id: string
  category: string
  stream_id: string
  stream_version: number
  global_position: string
  tx_id: string
  recorded_at: Date
}

/** Every stored event in the log order, read as the superuser (no gap-safe horizon: call it once writers are done). */
export async function logRows(admin: Sql): Promise<LogRow[]> {
  return admin<LogRow[]>`
    select e.event_id::text, e.tenant_id, e.category, e.stream_id, e.stream_version::int,
           e.global_position::text, e.tx_id::text, e.recorded_at
      from eventplane.events e order by e.tx_id, e.global_position`
}

/** The checkpoint of the log's last event. */
export function endOf(rows: readonly LogRow[]): Checkpoint {
  const last = rows.at(-1)
  return last === undefined ? START : { txId: BigInt(last.tx_id), position: BigInt(last.global_position) }
}

/** How many events of the log are at or before relay `name`'s stored checkpoint. */
export async function checkpointedCount(admin: Sql, name: string): Promise<number> {
  const { txId, position } = await loadRelayCheckpoint(admin, name)
  const [row] = await admin<{ n: number }[]>`
    select count(*)::int as n from eventplane.events
     where (tx_id, global_position) <= (${txId.toString()}::xid8, ${position.toString()}::bigint)`
  return row!.n
}

/** Every acknowledged append is in PostgreSQL exactly once, at the position and version the gateway reported. */
export function assertAckedOnce(rows: readonly LogRow[], ledger: Ledger): void {
  const byId = new Map<string, LogRow[]>()
  for (const r of rows) byId.set(r.event_id, [...(byId.get(r.event_id) ?? []), r])
  for (const [id, ack] of ledger.acked) {
    const stored = byId.get(id) ?? []
    assert.equal(stored.length, 1, `acknowledged event ${id} is stored exactly once`)
    assert.equal(stored[0]!.global_position, ack.position, `event ${id} is at the acknowledged position`)
    assert.equal(stored[0]!.stream_version, ack.stream_version, `event ${id} has the acknowledged version`)
  }
}

/** Every stream's versions are exactly 1..n: no duplicate, no gap. */
export function assertVersionsContiguous(rows: readonly LogRow[]): number {
  const streams = new Map<string, number[]>()
  for (const r of rows) {
    const key = `${r.tenant_id}/${r.category}/${r.stream_id}`
    streams.set(key, [...(streams.get(key) ?? []), r.stream_version])
  }
  for (const [key, versions] of streams) {
    const sorted = [...versions].sort((a, b) => a - b)
    assert.deepEqual(
      sorted,
      sorted.map((_, i) => i + 1),
      `stream ${key} has versions 1..${versions.length}`,
    )
  }
  return streams.size
}

/**
 * JetStream holds the whole log in the log's order, each event exactly once
 * (only relays publish, and a relay resumes after the stream's last message).
 * Returns how many messages were copies (0, or the assertion failed).
 */
export async function assertStreamCarriesLog(operator: NatsConnection, rows: readonly LogRow[]): Promise<number> {
  const want = rows.map((r) => r.event_id)
  let ids: string[] = []
  await eventually(
    async () => {
      ids = (await streamMessages(operator)).map((m) => m.event.event_id)
      return new Set(ids).size >= want.length
    },
    `JetStream to hold all ${want.length} events`,
    30_000,
  )
  const first = [...new Set(ids)]
  const copies = ids.length - first.length
  assert.equal(copies, 0, 'no event is in the stream twice')
  assert.deepEqual(first, want, 'the stream holds the log, in the log order')
  return copies
}

/** Waits until `runner` has applied the log up to `end` (polling: the gap-safe read may be held back). */
export async function reachesEnd(runner: ProjectionRunner, end: Checkpoint, timeoutMs = 30_000): Promise<void> {
  await eventually(
    () => compareCheckpoints(runner.checkpoint, end) >= 0,
    `the projection to reach ${end.txId}:${end.position}`,
    timeoutMs,
  )
}

/**
 * Rebuilds `faultCounter` from PostgreSQL under another name (the live output
 * stays untouched) and returns its digest. First waits until the gap-safe
 * read sees all `events` (a transaction of this database may hold it back).
 */
export async function rebuiltDigest(projector: Sql, events: number): Promise<string> {
  await eventually(
    async () => {
      const [row] = await projector<{ n: number }[]>`
      select count(*)::int as n from eventplane.events where tx_id < eventplane.log_horizon(pg_current_snapshot())`
      return row!.n >= events
    },
    `the gap-safe read to see all ${events} events`,
    30_000,
  )
  const twin = defineReducerProjection({ ...faultCounter, name: 'fault_counter_rebuilt' })
  const rebuilt = await rebuildProjection({ projection: twin, sql: projector })
  return rebuilt.digest!.sha256
}

/**
 * The live projection applied every event once: its digest equals a rebuild
 * from PostgreSQL, its counts add up to the log, and no stream was counted twice.
 */
export async function assertProjectionOnce(projector: Sql, rows: readonly LogRow[]): Promise<void> {
  const live = await projectionDigest(projector, faultCounter)
  assert.equal(
    live.sha256,
    await rebuiltDigest(projector, rows.length),
    'the live projection equals one rebuilt from PostgreSQL',
  )
  const states = await projector<{ count: number; last: number }[]>`
    select (state->>'count')::int as count, (state->>'last')::int as last
      from eventplane.projection_state where projection = ${faultCounter.name}`
  assert.equal(
    states.reduce((n, s) => n + s.count, 0),
    rows.length,
    'the projection counted every event of the log once',
  )
  for (const s of states) assert.equal(s.count, s.last, 'no stream was counted twice')
}

/**
 * The end state of a fault run whose clients retried until acknowledged: PostgreSQL holds exactly `submitted`
 * events, each acknowledged one once at the position and version it was acknowledged with, every stream's
 * versions contiguous; JetStream carries the log once, in its order; and `runner` (live on `faultCounter`),
 * stopped here once it reached the log's end, applied every event once. Returns the log's rows.
 */
export async function assertNothingLostOrDoubled(
  sys: FaultSystem,
  o: { runner: ProjectionRunner; ledger: Ledger; submitted: number },
): Promise<LogRow[]> {
  const rows = await logRows(sys.admin)
  assert.equal(rows.length, o.submitted, 'PostgreSQL holds every submitted event and nothing else')
  assertAckedOnce(rows, o.ledger)
  assertVersionsContiguous(rows)
  await assertStreamCarriesLog(await sys.env.natsAs('operator'), rows)
  await reachesEnd(o.runner, endOf(rows))
  await o.runner.stop()
  await assertProjectionOnce(sys.projector, rows)
  return rows
}
