import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import {
  type ChainBreak,
  type ChainHeads,
  PgEventStore,
  ROLES,
  checkHeads,
  headsToFile,
  readHeads,
  verifyLog,
} from '@eventplane/store-pg'
import { eventually, useTestDatabase } from '@eventplane/store-pg/testing'
import type { Sql } from 'postgres'
import { factoryFor, rechain, stream } from './helpers.ts'

const STREAMS = ['clean', 'payload', 'actor', 'deleted', 'swapped', 'inserted', 'renumbered', 'hashonly', 'rewritten']

const at = (v: number) => (id: string) => `stream_id = '${id}' and stream_version = ${v}`

describe('tampering as a superuser is detected', () => {
  const db = useTestDatabase('ep_chain_tamper')
  let operator: Sql
  let heads: ChainHeads

  before(async () => {
    operator = db.connect(ROLES.operator, 2)
    const store = new PgEventStore(operator)
    const f = factoryFor('acme')
    for (const id of STREAMS) {
      const s = stream('acme', id)
      for (let i = 1; i <= 5; i++) await store.append(s, [f.intent(s, 'scaled', { replicas: i, note: `r${i}` })])
    }
    // Heads cover what the gap-safe read returns: wait until no transaction elsewhere holds them back.
    await eventually(async () => {
      heads = checkHeads(JSON.parse(JSON.stringify(headsToFile(await readHeads(operator, 'acme')))))
      return heads.streams.reduce((n, h) => n + h.version, 0) === STREAMS.length * 5
    })
    // After the heads were saved: a new stream and a new event on a clean one, both legitimate.
    await store.append(stream('acme', 'later'), [f.intent(stream('acme', 'later'), 'created', {})])
    await store.append(stream('acme', 'clean'), [f.intent(stream('acme', 'clean'), 'scaled', { replicas: 6 })])

    const sql = (text: string) => db.admin.unsafe(text)
    await sql('alter table eventplane.events disable trigger user')
    await sql(`update eventplane.events set data = jsonb_set(data, '{note}', '"R3"') where ${at(3)('payload')}`)
    await sql(`update eventplane.events set caused_by = 'user:mallory' where ${at(3)('actor')}`)
    await sql(`delete from eventplane.events where ${at(3)('deleted')}`)
    await sql(`update eventplane.events set stream_version = 99 where ${at(3)('swapped')}`)
    await sql(`update eventplane.events set stream_version = 3 where ${at(4)('swapped')}`)
    await sql(`update eventplane.events set stream_version = 4 where ${at(99)('swapped')}`)
    for (const v of [5, 4, 3])
      await sql(`update eventplane.events set stream_version = ${v + 1} where ${at(v)('inserted')}`)
    await sql(`insert into eventplane.events (event_id, tenant_id, kind, category, stream_id, stream_version, type,
        schema_version, data, correlation_id, caused_by, occurred_at, hash)
      values (gen_random_uuid(), 'acme', 'intent', 'deployment', 'inserted', 3, 'scaled', 1, '{"replicas": 0}',
        gen_random_uuid(), 'user:test', now(), '\\x00')`)
    await rechain(db.admin, 'inserted', 3)
    await sql(`delete from eventplane.events where ${at(3)('renumbered')}`)
    for (const v of [4, 5])
      await sql(`update eventplane.events set stream_version = ${v - 1} where ${at(v)('renumbered')}`)
    await sql(`update eventplane.events set hash = sha256('forged') where ${at(3)('hashonly')}`)
    await sql(`update eventplane.events set data = jsonb_set(data, '{replicas}', '300') where ${at(3)('rewritten')}`)
    await rechain(db.admin, 'rewritten', 3)
    await sql('alter table eventplane.events enable trigger user')
  })

  const byStream = (breaks: readonly ChainBreak[]) =>
    Object.fromEntries(breaks.map((b) => [b.stream_id, `${b.kind}@${b.version}`]))

  test('from the chain alone: each tampered stream is named with what differs and where', async () => {
    const result = await verifyLog(operator, { tenant: 'acme' })
    assert.equal(result.intact, false)
    assert.deepEqual(byStream(result.breaks), {
      payload: 'changed@3',
      actor: 'changed@3',
      deleted: 'missing@3',
      swapped: 'reordered@3',
      inserted: 'inserted@3',
      renumbered: 'missing@3',
      hashonly: 'hash_altered@3',
    })
    const payload = result.breaks.find((b) => b.stream_id === 'payload')!
    const [{ event_id }] = (await db.admin`
      select event_id from eventplane.events where stream_id = 'payload' and stream_version = 3`) as [
      { event_id: string },
    ]
    assert.equal(payload.event_id, event_id)
  })

  test('against heads saved before: a stream rewritten with recomputed hashes is caught too', async () => {
    const result = await verifyLog(operator, { tenant: 'acme', heads })
    assert.equal(byStream(result.breaks).rewritten, 'rewritten@5')
    assert.equal(byStream(result.breaks).inserted, 'inserted@3')
    assert.equal(result.breaks.length, 8)
    assert.equal(byStream(result.breaks).clean, undefined)
    assert.equal(byStream(result.breaks).later, undefined)
  })

  test('an untouched stream verifies, alone and against heads', async () => {
    const result = await verifyLog(operator, { tenant: 'acme', stream: { category: 'deployment', id: 'clean' }, heads })
    assert.deepEqual(result.breaks, [])
    assert.equal(result.events, 6)
    assert.equal(result.streams, 1, 'the summary counts the stream checked')
    assert.equal(result.intact, true)
  })
})
