import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import { EventFactory, type ValidEnvelope } from '@eventplane/core'
import { PgEventStore, ROLES, verifyLog } from '@eventplane/store-pg'
import { type TestDatabase, useTestDatabase } from '@eventplane/store-pg/testing'
import { stream } from './helpers.ts'

/**
 * A batch whose events differ in every field the append formats once per run (occurred_at, caused_by, kind,
 * type) and per event (causation, schema version, data with escapes and non-ASCII text), in runs, alone and
 * coming back.
 */
function mixedEvents(id: string): ValidEnvelope[] {
  const s = stream('acme', id)
  const alice = EventFactory.forTenant('acme', { causedBy: 'user:alice' })
  const odd = EventFactory.forTenant('acme', { causedBy: 'user:"q\\' })
  const root = alice.intent(s, 'created', { s: 'back\\slash \\u0041 \\\\ "quoted" é 中文 😀' })
  const child = alice.causedBy(root)
  const at = [
    '2026-11-30T01:02:03.000001Z',
    '2026-11-30T01:02:03.000001Z',
    '2026-11-30T01:02:03.000002Z',
    '2026-11-30T01:02:03.000001Z',
    '2024-02-29T23:59:59.999999+01:00',
    '2024-02-29T22:59:59.999999Z',
    '2026-11-30T01:02:03.5Z',
    '2026-11-30T01:02:03.5Z',
  ]
  const events = [
    root,
    child.intent(s, 'scaled', { n: [1.5, -0, 1e21], '\\': '\\\\', 'z😀': '\u2028\u00a0\u0001' }),
    odd.fact(s, 'scaled', { path: 'C:\\temp\\new', nl: 'a\nb\tc' }),
    odd.causedBy(root).fact(s, 'deployed', { ключ: 'значение' }),
    child.internal(s, 'deployed', {}),
    alice.intent(s, 'created', { nested: { b: [{ a: '\\"' }], a: null } }),
    child.fact(s, 'created', { t: true }),
    alice.intent(s, 'created', { last: '\\' }),
  ]
  return events.map((e, i) => ({ ...e, occurred_at: at[i]!, schema_version: i % 3 === 2 ? 2 : 1 }))
}

const hashesOf = async (db: TestDatabase, id: string) =>
  (
    await db.admin<{ h: string }[]>`
      select encode(hash, 'hex') as h from eventplane.events where stream_id = ${id} order by stream_version`
  ).map((r) => r.h)

describe('a batch is chained exactly as its events appended one at a time', () => {
  // The same events (ids included) in two logs: one takes them as batches, the other event by event.
  const batched = useTestDatabase('ep_chain_batched')
  const single = useTestDatabase('ep_chain_single')
  let batchStore: PgEventStore
  let singleStore: PgEventStore

  before(async () => {
    batchStore = new PgEventStore(batched.connect(ROLES.operator, 1))
    singleStore = new PgEventStore(single.connect(ROLES.operator, 1))
  })

  for (const [id, firstAlone] of [
    ['from-genesis', false],
    ['after-a-stored-event', true],
  ] as const) {
    test(`mixed occurred_at, caused_by, causation, kinds and escaped non-ASCII data: ${id}`, async () => {
      const events = mixedEvents(id)
      const s = stream('acme', id)
      if (firstAlone) {
        await batchStore.append(s, events.slice(0, 1))
        await batchStore.append(s, events.slice(1))
      } else await batchStore.append(s, events)
      for (const e of events) await singleStore.append(s, [e])
      const fromBatch = await hashesOf(batched, id)
      assert.equal(fromBatch.length, events.length)
      assert.deepEqual(fromBatch, await hashesOf(single, id))
      for (const db of [batched, single]) {
        const result = await verifyLog(db.admin, { tenant: 'acme', stream: { category: 'deployment', id } })
        assert.deepEqual(result.breaks, [])
        assert.equal(result.events, events.length)
      }
    })
  }
})
