import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import type { Sql } from 'postgres'
import { type RecordedEvent, START, type ValidEnvelope } from '@eventplane/core'
import { PgEventStore, ROLES, type RoleName } from '@eventplane/store-pg'
import { eventually, useTestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

// Every tenant-scoped read function (0017), for every role that may run it:
// an RLS-scoped role (reader, writers) is held to its tenant by row level
// security and by the function's own tenant condition; a cross-tenant role
// (relay, operator: USING (true)) by the function's tenant condition alone.
// Tenant globex has a stream, a category and a correlation chain acme lacks,
// and a stream of the same name as acme's with more events.
const EVENT_ROLES: RoleName[] = [ROLES.reader, ROLES.intentWriter, ROLES.factWriter, ROLES.relay, ROLES.operator]
const CHAIN_ROLES: RoleName[] = [ROLES.reader, ROLES.relay, ROLES.operator]

const ids = (events: readonly { event_id: string }[]) => events.map((e) => e.event_id)

async function readCategory(store: PgEventStore, tenant: string, category: string): Promise<string[]> {
  const out: RecordedEvent[] = []
  for await (const batch of store.readCategory(tenant, category, { from: START, batchSize: 2 })) out.push(...batch)
  return ids(out)
}

/** chain_rows (what verify reads) of one stream or one tenant, as event ids. */
async function chainRows(sql: Sql, tenant: string, category: string | null, id: string | null): Promise<string[]> {
  const rows = await sql<{ event_id: string }[]>`
    select event_id from eventplane.chain_rows(${tenant}, ${category}, ${id}, '', '', '', 0, 1000)`
  return rows.map((r) => r.event_id)
}

describe('tenant-scoped reads return only the asked tenant, for every role', () => {
  const db = useTestDatabase('ep_readiso')
  const acme = factoryFor('acme')
  const globex = factoryFor('globex')
  const web = { category: 'deployment', id: 'web' }
  let acmeWeb: ValidEnvelope[]
  let acmeChain: ValidEnvelope[]
  let globexRoot: ValidEnvelope
  const stores = new Map<RoleName, PgEventStore>()
  const sqls = new Map<RoleName, Sql>()

  before(async () => {
    const writer = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    const root = acme.intent(web, 'created', { n: 1 })
    acmeWeb = [root, acme.causedBy(root).intent(web, 'scaled', { n: 2 })]
    acmeChain = acmeWeb
    await writer.append(stream('acme', 'web'), acmeWeb)
    globexRoot = globex.intent(web, 'created', { n: 1 })
    const globexWeb = [globexRoot, globex.causedBy(globexRoot).intent(web, 'scaled', { n: 2 })]
    globexWeb.push(globex.causedBy(globexRoot).intent(web, 'scaled', { n: 3 }))
    await writer.append(stream('globex', 'web'), globexWeb)
    const only = { category: 'deployment', id: 'only-globex' }
    await writer.append(stream('globex', 'only-globex'), [globex.intent(only, 'created', {})])
    const audit = { category: 'audit', id: 'a1' }
    await writer.append(stream('globex', 'a1', 'audit'), [globex.intent(audit, 'noted', {})])
    for (const role of new Set([...EVENT_ROLES, ...CHAIN_ROLES])) {
      const sql = db.connect(role, 1)
      sqls.set(role, sql)
      stores.set(role, new PgEventStore(sql))
    }
    const relay = stores.get(ROLES.relay)!
    await eventually(async () => (await readCategory(relay, 'globex', 'audit')).length === 1)
  })

  test('read_stream: acme’s stream of a name globex shares holds acme’s events; globex’s stream is empty', async () => {
    const seen: Record<string, unknown> = {}
    for (const role of EVENT_ROLES) {
      const store = stores.get(role)!
      seen[role] = {
        forward: ids(await store.readStreamToArray(stream('acme', 'web'))),
        backward: ids(await store.readStreamToArray(stream('acme', 'web'), { direction: 'backward' })),
        globexOnly: ids(await store.readStreamToArray(stream('acme', 'only-globex'))),
      }
    }
    const expected = {
      forward: ids(acmeWeb),
      backward: ids(acmeWeb).reverse(),
      globexOnly: [],
    }
    assert.deepEqual(seen, Object.fromEntries(EVENT_ROLES.map((r) => [r, expected])))
  })

  test('read_category: acme’s category holds acme’s events only; globex’s category is empty for acme', async () => {
    const seen: Record<string, unknown> = {}
    for (const role of EVENT_ROLES) {
      const store = stores.get(role)!
      seen[role] = {
        deployment: await readCategory(store, 'acme', 'deployment'),
        audit: await readCategory(store, 'acme', 'audit'),
      }
    }
    const expected = { deployment: ids(acmeWeb), audit: [] }
    assert.deepEqual(seen, Object.fromEntries(EVENT_ROLES.map((r) => [r, expected])))
  })

  test('read_correlation: acme asking for globex’s chain gets nothing; its own chain is whole', async () => {
    const seen: Record<string, unknown> = {}
    for (const role of EVENT_ROLES) {
      const store = stores.get(role)!
      seen[role] = {
        own: ids(await store.readCorrelation('acme', acmeChain[0]!.event_id)),
        globex: ids(await store.readCorrelation('acme', globexRoot.event_id)),
      }
    }
    const expected = { own: ids(acmeChain), globex: [] }
    assert.deepEqual(seen, Object.fromEntries(EVENT_ROLES.map((r) => [r, expected])))
  })

  test('readEvents (by id): acme asking for ids of both tenants gets its own events only, in log order', async () => {
    const seen: Record<string, unknown> = {}
    const asked = [globexRoot.event_id, ...ids(acmeWeb).reverse()]
    for (const role of EVENT_ROLES) seen[role] = ids(await stores.get(role)!.readEvents('acme', asked))
    assert.deepEqual(seen, Object.fromEntries(EVENT_ROLES.map((r) => [r, ids(acmeWeb)])))
  })

  test('list_streams: acme’s streams only, with acme’s versions', async () => {
    const seen: Record<string, unknown> = {}
    for (const role of EVENT_ROLES) {
      const store = stores.get(role)!
      seen[role] = {
        all: (await store.listStreams('acme')).map((s) => `${s.stream.category}/${s.stream.id}@${s.version}`),
        audit: (await store.listStreams('acme', { category: 'audit' })).map((s) => s.stream.id),
      }
    }
    const expected = { all: ['deployment/web@2'], audit: [] }
    assert.deepEqual(seen, Object.fromEntries(EVENT_ROLES.map((r) => [r, expected])))
  })

  test('list_streams: a page holds `limit` streams of the tenant even when another tenant’s streams lie between', async () => {
    // hooli's a and c, vandelay's b between them: a cross-tenant role's page of two must be a and c, not a
    // alone (a page cut at two streams of any tenant, then filtered, would look like the end of the list).
    const writer = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    const hooli = factoryFor('hooli')
    for (const [f, tenant, id] of [
      [hooli, 'hooli', 'a'],
      [factoryFor('vandelay'), 'vandelay', 'b'],
      [hooli, 'hooli', 'c'],
    ] as const)
      await writer.append(stream(tenant, id), [f.intent({ category: 'deployment', id }, 'created', {})])
    const seen: Record<string, string[]> = {}
    for (const role of EVENT_ROLES)
      seen[role] = (await stores.get(role)!.listStreams('hooli', { limit: 2 })).map((s) => s.stream.id)
    assert.deepEqual(seen, Object.fromEntries(EVENT_ROLES.map((r) => [r, ['a', 'c']])))
  })

  test('chain_rows: acme’s stream and tenant hold acme’s events only; globex’s stream is empty for acme', async () => {
    const seen: Record<string, unknown> = {}
    for (const role of CHAIN_ROLES) {
      const sql = sqls.get(role)!
      seen[role] = {
        stream: await chainRows(sql, 'acme', 'deployment', 'web'),
        globexOnly: await chainRows(sql, 'acme', 'deployment', 'only-globex'),
        tenant: await chainRows(sql, 'acme', null, null),
      }
    }
    const acmeIds = ids(acmeWeb)
    const expected = { stream: acmeIds, globexOnly: [], tenant: acmeIds }
    assert.deepEqual(seen, Object.fromEntries(CHAIN_ROLES.map((r) => [r, expected])))
  })

  test('chain_heads: a stream of a name another tenant shares, longer and written first, has its own head', async () => {
    // Tenants of their own: umbrella's web (3 events) is written before initech's (1), so it lies inside the
    // position initech's heads are taken at; only the tenant condition keeps it out of initech's head.
    const writer = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    const umbrella = factoryFor('umbrella')
    await writer.append(
      stream('umbrella', 'web'),
      [1, 2, 3].map((n) => umbrella.intent(web, 'created', { n })),
    )
    const [own] = (await writer.append(stream('initech', 'web'), [factoryFor('initech').intent(web, 'created', {})]))
      .events
    const [stored] = await db.admin<{ hash: string }[]>`
      select encode(hash, 'hex') as hash from eventplane.events where event_id = ${own!.eventId}`
    const heads = (sql: Sql) =>
      sql<{ head: string }[]>`
        select category || '/' || stream_id || '@' || stream_version || ':' || encode(hash, 'hex') as head
          from eventplane.chain_heads('initech')`.then((rows) => rows.map((r) => r.head))
    const expected = [`deployment/web@1:${stored!.hash}`]
    await eventually(async () => (await heads(sqls.get(ROLES.reader)!)).length > 0)
    const seen: Record<string, unknown> = {}
    for (const role of CHAIN_ROLES) seen[role] = await heads(sqls.get(role)!)
    assert.deepEqual(seen, Object.fromEntries(CHAIN_ROLES.map((r) => [r, expected])))
  })

  test('each function sets its tenant before it reads, even over another tenant set earlier in the transaction', async () => {
    const reader = sqls.get(ROLES.reader)!
    const seen = await reader.begin(async (tx) => {
      // globex set again before each call: a function that read with the tenant the call before it set
      // (read_category after read_stream, …) would otherwise pass without setting its own.
      const asGlobex = async <T>(read: () => Promise<T>): Promise<T> => {
        await tx`select set_config('eventplane.tenant', 'globex', true)`
        return read()
      }
      const q = (read: () => Promise<{ event_id: string }[]>) =>
        asGlobex(read).then((rows) => rows.map((r) => r.event_id))
      return {
        stream: await q(
          () => tx`select event_id from eventplane.read_stream('acme', 'deployment', 'web', 1, false, 10)`,
        ),
        category: await q(() => tx`select event_id from eventplane.read_category('acme', 'deployment', '0', 0, 10)`),
        correlation: await q(
          () => tx`select event_id from eventplane.read_correlation('acme', ${acmeChain[0]!.event_id}, 10)`,
        ),
        all: await q(() => tx`select event_id from eventplane.read_all_for_tenant('acme', '0', 0, 10)`),
        chain: await q(() => tx`select event_id from eventplane.chain_rows('acme', null, null, '', '', '', 0, 10)`),
        streams: (
          await asGlobex(() => tx`select stream_id from eventplane.list_streams('acme', null, '', '', 10)`)
        ).map((r) => r.stream_id as string),
      }
    })
    const acmeIds = ids(acmeWeb)
    assert.deepEqual(seen, {
      stream: acmeIds,
      category: acmeIds,
      correlation: acmeIds,
      all: acmeIds,
      chain: acmeIds,
      streams: ['web'],
    })
  })

  test('the stream, category, correlation and tenant reads are inlined: one nested loop, set_config outside', async () => {
    // Not inlined, a function runs whole before the caller's select (PL/pgSQL copies every row, a SQL
    // function is parsed again per call), and the tenant's order against the scan is the plan's to pick.
    const calls = [
      `eventplane.read_stream('acme', 'deployment', 'web', 1, false, 10)`,
      `eventplane.read_stream('acme', 'deployment', 'web', 9, true, 10)`,
      `eventplane.read_category('acme', 'deployment', '0', 0, 10)`,
      `eventplane.read_correlation('acme', '${acmeChain[0]!.event_id}', 10)`,
      `eventplane.read_all_for_tenant('acme', '0', 0, 10)`,
    ]
    const plans: Record<string, string> = {}
    for (const call of calls) {
      const rows = await db.admin.begin(async (tx) => {
        await tx.unsafe(`set local role ${ROLES.reader}`)
        return tx.unsafe<{ 'QUERY PLAN': string }[]>(`explain (costs off) select e.event_id from ${call} e`)
      })
      const lines = rows.map((r) => r['QUERY PLAN'])
      plans[call] = `${lines[0]} / ${lines[1]?.trim()} / ${lines.some((l) => l.includes('Function Scan'))}`
    }
    assert.deepEqual(plans, Object.fromEntries(calls.map((c) => [c, 'Nested Loop / ->  Result / false'])))
  })
})
