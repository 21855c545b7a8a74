import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import {
  type ChainBreak,
  type ChainHeads,
  type ChainRow,
  ChainVerifier,
  PgEventStore,
  ROLES,
  readHeads,
  verifyLog,
} from '@eventplane/store-pg'
import { eventually, useTestDatabase } from '@eventplane/store-pg/testing'
import type { Sql } from 'postgres'
import { factoryFor, stream } from './helpers.ts'

const STREAMS = ['intact', 'tail', 'nohash', 'truncated', 'gone', 'unlisted']

const at = (v: number) => (id: string) => `stream_id = '${id}' and stream_version = ${v}`
const byStream = (breaks: readonly ChainBreak[]) =>
  Object.fromEntries(breaks.map((b) => [b.stream_id, `${b.kind}@${b.version}`]))

describe('verify at the edges of a stream and of a page', () => {
  const db = useTestDatabase('ep_chain_verify_edges')
  let operator: Sql
  let heads: ChainHeads
  let tailEventId: string

  before(async () => {
    operator = db.connect(ROLES.operator, 2)
    const store = new PgEventStore(operator)
    const f = factoryFor('acme')
    for (const id of STREAMS) {
      const s = stream('acme', id)
      for (let i = 1; i <= 5; i++) await store.append(s, [f.intent(s, 'scaled', { replicas: i })])
    }
    // Heads cover what the gap-safe read returns: wait until no transaction elsewhere holds them back.
    await eventually(async () => {
      heads = await readHeads(operator, 'acme')
      return heads.streams.reduce((n, h) => n + h.version, 0) === STREAMS.length * 5
    })
    const sql = (text: string) => db.admin.unsafe(text)
    const [row] = await db.admin<{ id: string }[]>`
      select event_id::text as id from eventplane.events where stream_id = 'tail' and stream_version = 5`
    tailEventId = row!.id
    await sql('alter table eventplane.events disable trigger user')
    await sql('alter table eventplane.events alter column hash drop not null')
    await sql(`update eventplane.events set data = '{"replicas": 50}' where ${at(5)('tail')}`)
    await sql(`update eventplane.events set hash = null where ${at(2)('nohash')}`)
    await sql(`delete from eventplane.events where stream_id = 'truncated' and stream_version >= 4`)
    await sql(`delete from eventplane.events where stream_id = 'gone'`)
    await sql('alter table eventplane.events enable trigger user')
  })

  test("from the chain alone: a stream's last event changed and an event without a hash are named", async () => {
    const result = await verifyLog(operator, { tenant: 'acme' })
    assert.deepEqual(byStream(result.breaks), { tail: 'changed@5', nohash: 'hash_altered@2' })
    assert.equal(result.breaks.find((b) => b.stream_id === 'tail')!.event_id, tailEventId)
    assert.equal(result.brokenStreams, 2)
  })

  test('against heads: a shortened stream is missing after its last event; a vanished one is missing at 1', async () => {
    const result = await verifyLog(operator, { tenant: 'acme', heads })
    assert.deepEqual(byStream(result.breaks), {
      tail: 'changed@5',
      nohash: 'hash_altered@2',
      truncated: 'missing@4',
      gone: 'missing@1',
    })
    for (const id of ['truncated', 'gone']) {
      const b = result.breaks.find((x) => x.stream_id === id)!
      assert.equal(b.event_id, null, id)
      assert.equal(b.category, 'deployment', id)
      assert.equal(b.tenant, 'acme', id)
    }
  })

  test('against heads that lack a stream the log had at their point, the stream is inserted at version 1', async () => {
    const without = { ...heads, streams: heads.streams.filter((h) => h.stream_id !== 'unlisted') }
    const result = await verifyLog(operator, { tenant: 'acme', stream: { category: 'deployment', id: 'unlisted' } })
    assert.deepEqual(result.breaks, [])
    const against = await verifyLog(operator, {
      tenant: 'acme',
      stream: { category: 'deployment', id: 'unlisted' },
      heads: without,
    })
    assert.deepEqual(byStream(against.breaks), { unlisted: 'inserted@1' })
  })

  test('against heads at exactly the position of an event past their head, that event is inserted', async () => {
    const rows = await db.admin<{ v: number; tx: string; pos: string; hash: Buffer }[]>`
      select stream_version::int as v, tx_id::text as tx, global_position::text as pos, hash
        from eventplane.events where stream_id = 'unlisted' and stream_version >= 4 order by stream_version`
    const v4 = rows[0]!
    const v5 = rows[1]!
    const headAt4 = (position: bigint): ChainHeads => ({
      ...heads,
      tx_id: BigInt(v5.tx),
      global_position: position,
      streams: [{ category: 'deployment', stream_id: 'unlisted', version: 4, hash: v4.hash }],
    })
    const check = (h: ChainHeads) =>
      verifyLog(operator, { tenant: 'acme', stream: { category: 'deployment', id: 'unlisted' }, heads: h })
    assert.deepEqual(byStream((await check(headAt4(BigInt(v5.pos)))).breaks), { unlisted: 'inserted@5' })
    assert.deepEqual((await check(headAt4(BigInt(v5.pos) - 1n))).breaks, [], 'one position before it: written later')
  })

  test('pages of any size check the same events and find the same breaks', async () => {
    const whole = await verifyLog(operator, { tenant: 'acme', heads })
    assert.equal(whole.events, 5 * 4 + 3)
    for (const batchSize of [1, 2, 3, 5]) {
      const paged = await verifyLog(operator, { tenant: 'acme', heads, batchSize })
      assert.equal(paged.events, whole.events, `batchSize ${batchSize}`)
      assert.equal(paged.streams, whole.streams, `batchSize ${batchSize}`)
      assert.deepEqual(paged.breaks, whole.breaks, `batchSize ${batchSize}`)
    }
  })

  test('one stream, and every tenant the role sees, read in pages: the same events and breaks as whole', async () => {
    // chain_rows has a branch per scope (stream, tenant, all); each continues strictly after the page's last
    // key. Sizes from 2 up: a page that repeated its last row would then double events, not loop forever.
    const scopes = [...STREAMS.map((id) => ({ tenant: 'acme', stream: { category: 'deployment', id } })), {}]
    for (const scope of scopes) {
      const whole = await verifyLog(operator, scope)
      for (const batchSize of [2, 3, 4]) {
        const paged = await verifyLog(operator, { ...scope, batchSize })
        const label = `${JSON.stringify(scope)} batchSize ${batchSize}`
        assert.equal(paged.events, whole.events, label)
        assert.equal(paged.streams, whole.streams, label)
        assert.deepEqual(paged.breaks, whole.breaks, label)
      }
    }
    const intact = { tenant: 'acme', stream: { category: 'deployment', id: 'intact' } }
    assert.deepEqual(await verifyLog(operator, { ...intact, batchSize: 2 }), {
      intact: true,
      events: 5,
      streams: 1,
      brokenStreams: 0,
      breaks: [],
    })
  })

  test('at most maxBreaks breaks are kept, and every broken stream is counted', () => {
    const row = (id: string): ChainRow => ({
      event_id: '00000000-0000-4000-8000-000000000001',
      tenant_id: 'acme',
      kind: 'intent',
      category: 'deployment',
      stream_id: id,
      stream_version: 1,
      type: 'scaled',
      schema_version: 1,
      correlation_id: '00000000-0000-4000-8000-000000000001',
      causation_id: null,
      caused_by: 'user:test',
      occurred_at: '2026-11-30T00:00:00.000000Z',
      data: '{}',
      hash: null,
      global_position: 1n,
      tx_id: 1n,
    })
    const verifier = new ChainVerifier({ maxBreaks: 2 })
    for (const id of ['a', 'b', 'c']) verifier.push(row(id))
    verifier.finish()
    assert.equal(verifier.brokenStreams, 3)
    assert.deepEqual(
      verifier.breaks.map((b) => b.stream_id),
      ['a', 'b'],
    )
  })
})
