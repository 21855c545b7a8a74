import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type EventEnvelope, type RecordedEvent, START } from '@eventplane/core'
import { type AppendResult, PgEventStore, ROLES, streamLog } from '@eventplane/store-pg'
import { createTestDatabase, eventually, type TestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor } from './helpers.ts'

/** occurred_at as sent (any offset, 0–6 fraction digits) and as every reader must return it: UTC, ms or µs. */
const INSTANTS: [sent: string, read: string][] = [
  ['2026-11-30T05:06:07.123456+01:00', '2026-11-30T04:06:07.123456Z'],
  ['2026-11-30T04:06:07Z', '2026-11-30T04:06:07.000Z'],
  ['2026-11-30T04:06:07.1Z', '2026-11-30T04:06:07.100Z'],
  ['2026-11-30T04:06:07.12345Z', '2026-11-30T04:06:07.123450Z'],
  ['2026-11-30T04:06:07.000001Z', '2026-11-30T04:06:07.000001Z'],
  ['2026-11-30T04:06:07.120000-02:30', '2026-11-30T06:36:07.120Z'],
  ['2026-02-28T23:59:59.999Z', '2026-02-28T23:59:59.999Z'],
]

describe('what every reader maps each column to', () => {
  let db: TestDatabase
  let expected: RecordedEvent[]
  const s = { tenant: 'acme', category: 'deployment', id: 'web-1' }

  /** The recorded form of `envelopes` appended with `result`: occurred_at as read back, the store's columns. */
  const recorded = (envelopes: EventEnvelope[], result: AppendResult, occurred: string[]): RecordedEvent[] =>
    envelopes.map((e, i) => ({
      ...e,
      stream: { ...e.stream },
      occurred_at: occurred[i]!,
      stream_version: result.events[i]!.streamVersion,
      global_position: result.events[i]!.position,
      tx_id: result.events[i]!.txId,
      recorded_at: result.events[i]!.recordedAt,
    }))

  before(async () => {
    db = await createTestDatabase('ep_read_mapping')
    // Positions past 2^53: a double cannot hold them, so a mapping through Number shows.
    await db.admin`alter table eventplane.events alter column global_position restart with 9007199254740993`
    const intents = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    const facts = new PgEventStore(db.connect(ROLES.factWriter, 1))
    const alice = factoryFor('acme', 'user:alice')
    // Copies with another occurred_at are no longer ValidEnvelopes: append validates them.
    const roots = INSTANTS.map(([sent], i) => ({
      ...alice.intent(s, 'created', { image: `web:${i}`, replicas: i }, { schemaVersion: 2 }),
      occurred_at: sent,
    }))
    const first = await intents.append(s, roots)
    const controller = alice.causedBy(roots[0]!, { causedBy: 'controller:deployments' })
    const fact = controller.fact(s, 'scheduled', { node: 'n1' })
    const second = await facts.append(s, [fact], { expectedVersion: roots.length })
    expected = [
      ...recorded(
        roots,
        first,
        INSTANTS.map(([, read]) => read),
      ),
      ...recorded([fact], second, [fact.occurred_at]),
    ]
    assert.ok(expected[0]!.global_position > 2n ** 53n)
    await eventually(async () => {
      const relay = new PgEventStore(db.connect(ROLES.relay, 1))
      let n = 0
      for await (const b of relay.readAll()) n += b.length
      return n === expected.length
    })
  })
  after(() => db.drop())

  const collect = async (batches: AsyncIterable<RecordedEvent[]>): Promise<RecordedEvent[]> => {
    const out: RecordedEvent[] = []
    for await (const b of batches) out.push(...b)
    return out
  }

  test('readAll, readStream, readCategory, readCorrelation and streamLog return every field as appended', async () => {
    const relay = new PgEventStore(db.connect(ROLES.relay, 2))
    const reader = new PgEventStore(db.connect(ROLES.reader, 2))
    const projector = db.connect(ROLES.projector, 2)
    assert.deepEqual(await collect(relay.readAll({ batchSize: 3 })), expected, 'readAll')
    assert.deepEqual(await collect(reader.readAll({ tenant: 'acme', batchSize: 3 })), expected, 'readAll of a tenant')
    assert.deepEqual(await reader.readStreamToArray(s, { batchSize: 3 }), expected, 'readStream')
    assert.deepEqual(
      await collect(reader.readStream(s, { direction: 'backward', batchSize: 3 })),
      [...expected].reverse(),
      'readStream backward',
    )
    assert.deepEqual(await collect(reader.readCategory('acme', 'deployment', { batchSize: 3 })), expected)
    assert.deepEqual(
      await reader.readCorrelation('acme', expected[0]!.event_id),
      [expected[0], expected.at(-1)],
      'readCorrelation: the root and the fact it caused',
    )
    assert.deepEqual(await collect(streamLog(projector, { from: START, batchSize: 3 })), expected, 'streamLog')
  })

  test('readAllText returns the same fields by name, positions as text and data as its JSON text', async () => {
    const relay = new PgEventStore(db.connect(ROLES.relay, 2))
    const rows = []
    for await (const b of relay.readAllText({ batchSize: 3 })) rows.push(...b)
    assert.deepEqual(
      rows.map((r) => ({ ...r, data: JSON.parse(r.data) })),
      expected.map((e) => ({
        global_position: String(e.global_position),
        tx_id: String(e.tx_id),
        event_id: e.event_id,
        tenant_id: e.tenant_id,
        kind: e.kind,
        category: e.stream.category,
        stream_id: e.stream.id,
        stream_version: String(e.stream_version),
        type: e.type,
        schema_version: e.schema_version,
        data: e.data,
        correlation_id: e.correlation_id,
        causation_id: e.causation_id,
        caused_by: e.caused_by,
        occurred_at: e.occurred_at,
        recorded_at: e.recorded_at,
      })),
    )
  })
})
