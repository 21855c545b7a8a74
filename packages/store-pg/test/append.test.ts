import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import { type EventplaneError, isEventplaneError, type ValidEnvelope, WrongExpectedVersion } from '@eventplane/core'
import postgres from 'postgres'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { eventually, holdStream, useTestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

describe('append', () => {
  const db = useTestDatabase('ep_append')
  let store: PgEventStore
  before(async () => {
    store = new PgEventStore(db.connect(ROLES.intentWriter, 24))
  })

  /**
   * Starts `n` appends to `s` while its next version is held (holdStream), waits until all of them wait on the
   * holder in PostgreSQL, then releases it: they race for that version at once, so the race is certain.
   */
  async function racingAppends<T>(
    s: ReturnType<typeof stream>,
    n: number,
    append: (i: number) => Promise<T>,
  ): Promise<T[]> {
    const held = await holdStream(db.admin, s)
    try {
      const appends = Array.from({ length: n }, (_, i) => append(i))
      for (const a of appends) a.catch(() => {})
      await eventually(
        async () => {
          const [row] = await db.admin<{ n: number }[]>`
          select count(*)::int as n from pg_stat_activity where ${held.pid}::int = any(pg_blocking_pids(pid))`
          return row!.n === n
        },
        30_000,
        `the ${n} appends to wait on the held version`,
      )
      await held.release()
      return await Promise.all(appends)
    } finally {
      await held.release()
    }
  }

  test('appends a batch in order and returns versions and positions', async () => {
    const f = factoryFor('acme')
    const s = stream('acme', 'web-1')
    const events = [f.intent(s, 'created', { replicas: 1 }), f.intent(s, 'scaled', { replicas: 3 })]
    const result = await store.append(s, events, { expectedVersion: 'no_stream' })
    assert.equal(result.nextExpectedVersion, 2)
    assert.deepEqual(
      result.events.map((e) => e.streamVersion),
      [1, 2],
    )
    assert.ok(result.events[0]!.position < result.events[1]!.position)
    assert.equal(result.replayed, false)
    const read = await store.readStreamToArray(s)
    assert.deepEqual(
      read.map((e) => [e.type, e.data, e.event_id]),
      events.map((e) => [e.type, e.data, e.event_id]),
    )
  })

  test('an append returns what it stored: version, position, transaction and time, one event and a batch', async () => {
    // One event and a batch take different INSERTs in the append function (migrations/0015).
    const f = factoryFor('acme')
    const s = stream('acme', 'returned-1')
    const one = await store.append(s, [f.intent(s, 'created', {})])
    const batch = await store.append(s, [f.intent(s, 'scaled', { replicas: 2 }), f.intent(s, 'scaled', {})])
    const returned = [...one.events, ...batch.events].map((e) => [
      e.eventId,
      e.streamVersion,
      e.position,
      e.txId,
      e.recordedAt,
    ])
    const stored = (await store.readStreamToArray(s)).map((e) => [
      e.event_id,
      e.stream_version,
      e.global_position,
      e.tx_id,
      e.recorded_at,
    ])
    assert.deepEqual(returned, stored)
    assert.deepEqual([one.nextExpectedVersion, batch.nextExpectedVersion], [1, 3])
    assert.notEqual(one.events[0]!.txId, batch.events[0]!.txId)
  })

  test('the time an append returns is UTC whatever the session time zone', async () => {
    const sql = postgres(db.roleUrl(ROLES.intentWriter), { max: 1, connection: { TimeZone: 'Asia/Kolkata' } })
    try {
      const [session] = await sql<{ zone: string }[]>`select current_setting('TimeZone') as zone`
      assert.equal(session?.zone, 'Asia/Kolkata')
      const f = factoryFor('acme')
      const s = stream('acme', 'returned-tz')
      const [appended] = (await new PgEventStore(sql).append(s, [f.intent(s, 'created', {})])).events
      const [row] = await db.admin<{ ms: string }[]>`
        select floor(extract(epoch from recorded_at) * 1000)::bigint::text as ms from eventplane.events
         where event_id = ${appended!.eventId}`
      assert.match(appended!.recordedAt, /Z$/)
      assert.equal(Date.parse(appended!.recordedAt), Number(row!.ms))
    } finally {
      await sql.end({ timeout: 5 })
    }
  })

  test('20 concurrent appends expecting the same version: exactly one wins, no duplicate version', async () => {
    const f = factoryFor('acme')
    const s = stream('acme', 'race-1')
    await store.append(s, [f.intent(s, 'created', {})])
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        store.append(s, [f.intent(s, 'scaled', { replicas: i })], { expectedVersion: 1 }),
      ),
    )
    const won = results.filter((r) => r.status === 'fulfilled')
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    assert.equal(won.length, 1)
    assert.equal(lost.length, 19)
    for (const r of lost) {
      assert.ok(isEventplaneError(r.reason, 'store.wrong_expected_version'), String(r.reason))
      assert.equal((r.reason as WrongExpectedVersion).actual, 2)
    }
    const versions = (await store.readStreamToArray(s)).map((e) => e.stream_version)
    assert.deepEqual(versions, [1, 2])
  })

  test('20 concurrent appends with expectedVersion any all succeed, with versions 1..n and no gap', async () => {
    const f = factoryFor('acme')
    const s = stream('acme', 'race-any')
    // All 20 wait on one held version 1 until it is rolled back: then they race for it, certainly, not by luck.
    const results = await racingAppends(s, 20, (i) => store.append(s, [f.intent(s, 'scaled', { replicas: i })]))
    assert.deepEqual(
      results.map((r) => r.nextExpectedVersion).sort((a, b) => a - b),
      Array.from({ length: 20 }, (_, i) => i + 1),
    )
    const versions = (await store.readStreamToArray(s)).map((e) => e.stream_version)
    assert.deepEqual(
      versions,
      Array.from({ length: 20 }, (_, i) => i + 1),
    )
  })

  test('an append with any that loses maxAppendRaces races in a row fails retryable store.unavailable, not a wrong version', async () => {
    const f = factoryFor('acme')
    const s = stream('acme', 'race-exhausted')
    // One race allowed: of 5 appends racing for one version, 1 wins and 4 lose their only race.
    const once = new PgEventStore(store.sql, { maxAppendRaces: 1 })
    const results = await racingAppends(s, 5, (i) =>
      once.append(s, [f.intent(s, 'scaled', { replicas: i })]).then(
        (r) => r,
        (e: unknown) => e,
      ),
    )
    const lost = results.filter((r) => r instanceof Error)
    assert.equal(lost.length, 4)
    for (const e of lost) {
      assert.ok(isEventplaneError(e, 'store.unavailable'), String(e))
      assert.match((e as Error).message, /lost 1 version races in a row .*; retry$/)
    }
    assert.deepEqual(
      (await store.readStreamToArray(s)).map((e) => e.stream_version),
      [1],
    )
    assert.throws(() => new PgEventStore(store.sql, { maxAppendRaces: 0 }), /maxAppendRaces must be a positive integer/)
  })

  test('expectedVersion no_stream fails on an existing stream and an exact version is checked', async () => {
    const f = factoryFor('acme')
    const s = stream('acme', 'exp-1')
    await store.append(s, [f.intent(s, 'created', {})], { expectedVersion: 'no_stream' })
    await assert.rejects(
      store.append(s, [f.intent(s, 'created', {})], { expectedVersion: 'no_stream' }),
      WrongExpectedVersion,
    )
    await assert.rejects(store.append(s, [f.intent(s, 'scaled', {})], { expectedVersion: 5 }), WrongExpectedVersion)
    const ok = await store.append(s, [f.intent(s, 'scaled', {})], { expectedVersion: 1 })
    assert.equal(ok.nextExpectedVersion, 2)
  })

  test('retrying an append with the same ids and content returns the first result and writes nothing', async () => {
    const f = factoryFor('acme')
    const s = stream('acme', 'retry-1')
    const events = [f.intent(s, 'created', { a: 1 }), f.intent(s, 'scaled', { b: [1, 2] })]
    const first = await store.append(s, events, { expectedVersion: 'no_stream' })
    const again = await store.append(s, structuredClone(events), { expectedVersion: 'no_stream' })
    assert.equal(again.replayed, true)
    assert.deepEqual(again.events, first.events)
    assert.equal((await store.readStreamToArray(s)).length, 2)
  })

  test('an identical retry with expectedVersion any returns the first result: stored ids are probed after the insert meets one', async () => {
    const f = factoryFor('acme')
    const s = stream('acme', 'retry-any')
    const events = [f.intent(s, 'created', { a: 1 }), f.intent(s, 'scaled', { b: 2 })]
    const first = await store.append(s, events)
    await store.append(s, [f.intent(s, 'scaled', { b: 3 })])
    const again = await store.append(s, structuredClone(events))
    assert.equal(again.replayed, true)
    assert.deepEqual(again.events, first.events)
    assert.equal((await store.readStreamToArray(s)).length, 3)
  })

  test('the same event id with different content fails with IdempotencyConflict and writes nothing', async () => {
    const f = factoryFor('acme')
    const s = stream('acme', 'retry-2')
    const event = f.intent(s, 'created', { a: 1 })
    await store.append(s, [event])
    await assert.rejects(store.append(s, [{ ...event, data: { a: 2 } }]), (e) =>
      isEventplaneError(e, 'store.idempotency_conflict'),
    )
    const other = factoryFor('acme').intent(s, 'created', { x: 1 })
    await assert.rejects(store.append(s, [other, { ...event, type: 'deleted' }]), (e) =>
      isEventplaneError(e, 'store.idempotency_conflict'),
    )
    assert.deepEqual(
      (await store.readStreamToArray(s)).map((e) => e.data),
      [{ a: 1 }],
    )
  })

  test('the same batch appended 10 times at once is stored once; the others return it as a replay', async () => {
    const f = factoryFor('acme')
    const s = stream('acme', 'retry-race')
    const events = [f.intent(s, 'created', { a: 1 }), f.intent(s, 'scaled', { b: 2 })]
    const results = await racingAppends(s, 10, () => store.append(s, structuredClone(events)))
    assert.equal(results.filter((r) => !r.replayed).length, 1)
    for (const r of results) assert.deepEqual(r.events, results.find((x) => !x.replayed)!.events)
    assert.deepEqual(
      (await store.readStreamToArray(s)).map((e) => e.event_id),
      events.map((e) => e.event_id),
    )
  })

  test('a batch of a stored event and a new one is a conflict, not a replay, and writes nothing', async () => {
    const f = factoryFor('acme')
    const s = stream('acme', 'retry-3')
    const stored = f.intent(s, 'created', { a: 1 })
    await store.append(s, [stored])
    const fresh = f.intent(s, 'scaled', { b: 2 })
    await assert.rejects(store.append(s, [structuredClone(stored), fresh]), (e) =>
      isEventplaneError(e, 'store.idempotency_conflict'),
    )
    assert.deepEqual(
      (await store.readStreamToArray(s)).map((e) => e.event_id),
      [stored.event_id],
    )
  })

  test('a conflict names the first event stored with other content, past an identical one; else the first stored', async () => {
    const f = factoryFor('acme')
    const s = stream('acme', 'retry-4')
    const [a, b] = [f.intent(s, 'created', { a: 1 }), f.intent(s, 'scaled', { b: 2 })]
    await store.append(s, [a, b])
    const conflictIds = async (events: ValidEnvelope[]) => {
      const e = await store.append(s, events).then(
        () => assert.fail('appended'),
        (e: unknown) => e,
      )
      assert.ok(isEventplaneError(e, 'store.idempotency_conflict'), String(e))
      return (e as EventplaneError).details.event_ids
    }
    assert.deepEqual(await conflictIds([structuredClone(a), { ...b, data: { b: 3 } }]), [b.event_id])
    assert.deepEqual(await conflictIds([structuredClone(a), f.intent(s, 'scaled', { c: 1 })]), [a.event_id])
    assert.equal((await store.readStreamToArray(s)).length, 2)
  })

  test('an event id taken in another tenant is a conflict, not a leak', async () => {
    const a = stream('acme', 'shared-id')
    const b = stream('globex', 'shared-id')
    const event = factoryFor('acme').intent(a, 'created', {})
    await store.append(a, [event])
    const copy = { ...event, tenant_id: 'globex' }
    await assert.rejects(store.append(b, [copy]), (e) => isEventplaneError(e, 'store.idempotency_conflict'))
  })

  test('readStream reads backward and from a version, in batches', async () => {
    const f = factoryFor('acme')
    const s = stream('acme', 'batches')
    await store.append(
      s,
      Array.from({ length: 7 }, (_, i) => f.intent(s, 'scaled', { i })),
    )
    const batches: number[][] = []
    for await (const batch of store.readStream(s, { batchSize: 3 })) batches.push(batch.map((e) => e.stream_version))
    assert.deepEqual(batches, [[1, 2, 3], [4, 5, 6], [7]])
    const backward = await store.readStreamToArray(s, { direction: 'backward', fromVersion: 5, maxCount: 3 })
    assert.deepEqual(
      backward.map((e) => e.stream_version),
      [5, 4, 3],
    )
    const fromFour = await store.readStreamToArray(s, { fromVersion: 4, maxCount: 2 })
    assert.deepEqual(
      fromFour.map((e) => e.data),
      [{ i: 3 }, { i: 4 }],
    )
  })

  test('a stream is its category and id: readStream of an id two categories share reads its own category only', async () => {
    const f = factoryFor('acme')
    const deploy = stream('acme', 'twin', 'deployment')
    const audit = stream('acme', 'twin', 'audit')
    await store.append(deploy, [f.intent(deploy, 'created', { c: 'deployment' })])
    await store.append(audit, [f.intent(audit, 'noted', { c: 'audit' }), f.intent(audit, 'noted', { c: 'audit' })])
    for (const [s, n] of [
      [deploy, 1],
      [audit, 2],
    ] as const) {
      for (const direction of ['forward', 'backward'] as const) {
        const read = await store.readStreamToArray(s, { direction })
        assert.deepEqual(
          read.map((e) => `${(e.data as { c: string }).c}:${e.stream_version}`),
          Array.from({ length: n }, (_, i) => `${s.category}:${direction === 'forward' ? i + 1 : n - i}`),
          `${s.category} ${direction}`,
        )
      }
    }
  })

  test('readCorrelation returns a chain in log order with lineage intact', async () => {
    const root = factoryFor('acme')
    const s = stream('acme', 'chain')
    const intent = root.intent(s, 'created', {})
    await store.append(s, [intent])
    const factStore = new PgEventStore(db.connect(ROLES.factWriter, 2))
    const child = root.causedBy(intent, { causedBy: 'controller:deployments' })
    const fact = child.fact(s, 'scheduled', { node: 'n1' })
    await factStore.append(s, [fact])
    const chain = await store.readCorrelation('acme', intent.correlation_id)
    assert.deepEqual(
      chain.map((e) => [e.event_id, e.causation_id, e.correlation_id]),
      [
        [intent.event_id, null, intent.event_id],
        [fact.event_id, intent.event_id, intent.event_id],
      ],
    )
    assert.deepEqual(await store.readCorrelation('globex', intent.correlation_id), [])
  })
})
