import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventFactory, validateEnvelope } from '@eventplane/core'
import { PgEventStore, ROLES, checkImportChain, exportEvents, importEvents, verifyLog } from '@eventplane/store-pg'
import { createTestDatabase, eventually, type TestDatabase } from '@eventplane/store-pg/testing'
import { PROJECTOR_ROLE, addFinalizer, rebuildProjection, setStatus } from '@eventplane/runtime'
import { auditProjection, deploymentStatusProjection } from '@eventplane/example-deployments'

/** Every event's stored hash, by event id. */
async function hashes(db: TestDatabase): Promise<Record<string, string>> {
  const rows = await db.admin<{ id: string; h: string }[]>`
    select event_id::text as id, encode(hash, 'hex') as h from eventplane.events order by event_id`
  return Object.fromEntries(rows.map((r) => [r.id, r.h]))
}

async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = []
  for await (const line of it) out.push(line)
  return out
}

/** One deployment's intent and the controller-like facts it causes, appended with the right roles. */
async function deploy(db: TestDatabase, tenant: string, id: string, replicas: number): Promise<string> {
  const s = { tenant, category: 'deployment', id }
  // occurred_at with microseconds (a client other than the factory may send them; PostgreSQL keeps them, and
  // the hash covers them): an export that wrote milliseconds would not re-import with the same hash.
  const intent = validateEnvelope({
    ...EventFactory.forTenant(tenant, { causedBy: `user:${tenant}-admin` }).intent(s, 'create', {
      image: `img-${id}`,
      replicas,
    }),
    occurred_at: `2026-11-30T05:06:07.${String(replicas).padStart(3, '0')}${replicas}04+01:00`,
  })
  await new PgEventStore(db.connect(ROLES.intentWriter, 1)).append(s, [intent])
  const f = EventFactory.fromEvent(intent, { causedBy: 'controller:deployments' })
  await new PgEventStore(db.connect(ROLES.factWriter, 1)).append(s, [
    validateEnvelope({
      ...f.fact(s, 'scheduled', { image: `img-${id}`, replicas }),
      occurred_at: `2026-11-30T04:06:07.00000${replicas}Z`,
    }),
    addFinalizer(f, s, 'dns-cleanup'),
    setStatus(f, s, 'running', 'scheduled'),
  ])
  return intent.correlation_id
}

describe('backup and re-ingest', () => {
  let source: TestDatabase
  let target: TestDatabase
  let chain: string
  before(async () => {
    ;[source, target] = await Promise.all([createTestDatabase('ep_restore_src'), createTestDatabase('ep_restore_dst')])
    chain = await deploy(source, 'acme', 'web', 2)
    await deploy(source, 'acme', 'api', 3)
    await deploy(source, 'globex', 'web', 9)
  })
  after(async () => {
    await Promise.all([source?.drop(), target?.drop()])
  })

  test('a correlation chain restored into an empty database rebuilds its projections to the same state', async () => {
    const lines = await collect(
      exportEvents(new PgEventStore(source.connect(ROLES.operator, 1)), {
        tenant: 'acme',
        correlationId: chain,
        includeActor: true,
      }),
    )
    assert.equal(lines.length, 4)
    const restored = await importEvents(new PgEventStore(target.connect(ROLES.operator, 1)), lines)
    assert.deepEqual(restored, { imported: 4, skipped: 0, conflicts: [] })

    const stateOf = async (db: TestDatabase, projection: string, key: string) => {
      const [row] =
        await db.admin`select state from eventplane.projection_state where projection = ${projection} and tenant_id = 'acme' and key = ${key}`
      return row?.state
    }
    for (const db of [source, target]) {
      await eventually(
        async () => {
          const r = await rebuildProjection({ projection: auditProjection, sql: db.connect(PROJECTOR_ROLE, 3) })
          return r.events >= 4
        },
        30_000,
        'the rebuild sees the restored events',
      )
      await rebuildProjection({ projection: deploymentStatusProjection, sql: db.connect(PROJECTOR_ROLE, 3) })
    }
    assert.deepEqual(await stateOf(target, 'audit', chain), await stateOf(source, 'audit', chain))
    assert.deepEqual(
      await stateOf(target, 'deployment_status', 'web'),
      await stateOf(source, 'deployment_status', 'web'),
    )
    assert.ok(await stateOf(target, 'audit', chain), 'the audit projection has the chain')
  })

  test('a whole tenant restored into an empty database keeps every hash and rebuilds both projections to the same digest', async () => {
    const fresh = await createTestDatabase('ep_restore_full')
    try {
      const before = await hashes(source)
      const lines = await collect(
        exportEvents(new PgEventStore(source.connect(ROLES.operator, 1)), { tenant: 'acme', includeActor: true }),
      )
      assert.equal(lines.length, 8)
      assert.ok(
        lines.some((l) => JSON.parse(l).occurred_at === '2026-11-30T04:06:07.002204Z'),
        'the export keeps occurred_at to the microsecond',
      )
      assert.deepEqual(await checkImportChain(fresh.admin, lines), { events: 8, streams: 2 })
      await importEvents(new PgEventStore(fresh.connect(ROLES.operator, 1)), lines)
      const original = new PgEventStore(source.connect(ROLES.operator, 1))
      const globexOnly = await collect(exportEvents(original, { tenant: 'globex', includeActor: true }))
      await importEvents(new PgEventStore(fresh.connect(ROLES.operator, 1)), globexOnly)
      for (const projection of [deploymentStatusProjection, auditProjection]) {
        const digests: string[] = []
        for (const db of [source, fresh]) {
          let digest = ''
          await eventually(
            async () => {
              const r = await rebuildProjection({ projection, sql: db.connect(PROJECTOR_ROLE, 3) })
              digest = r.digest!.sha256
              return r.events === 12
            },
            30_000,
            `${projection.name} rebuild sees all 12 events`,
          )
          digests.push(digest)
        }
        assert.equal(digests[1], digests[0], projection.name)
      }
      assert.deepEqual(await hashes(fresh), before, 'the same hashes after export, import and rebuilds')
      assert.deepEqual(await hashes(source), before, 'a rebuild does not touch the log')
      assert.equal(Object.keys(before).length, 12)
      assert.deepEqual((await verifyLog(fresh.admin)).breaks, [])
    } finally {
      await fresh.drop()
    }
  })
})
