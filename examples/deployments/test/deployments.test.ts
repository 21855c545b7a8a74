import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { EventFactory, type RecordedEvent } from '@eventplane/core'
import { Relay, ensureStream } from '@eventplane/bus-nats'
import { type TestNatsServer, startNatsServer } from '@eventplane/bus-nats/testing'
import {
  ControllerRunner,
  PROJECTOR_ROLE,
  ProjectionRunner,
  addFinalizer,
  controllerLiveSource,
  removeFinalizer,
} from '@eventplane/runtime'
import { PgEventStore, ROLES, type Sql, withTenant } from '@eventplane/store-pg'
import { type TestDatabase, createTestDatabase, eventually } from '@eventplane/store-pg/testing'
import { jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import { auditProjection, deploymentStatusProjection, deploymentsController, domain } from '../src/index.ts'

describe('the deployments example domain', () => {
  const registry = domain.registry()
  const stops: (() => Promise<unknown>)[] = []
  let db: TestDatabase
  let nats: TestNatsServer
  let nc: NatsConnection
  const h = {} as { db: TestDatabase; intents: PgEventStore; facts: PgEventStore; projector: Sql }
  const stream = (tenant: string, id: string) => ({ tenant, category: 'deployment', id })
  const readStream = (tenant: string, id: string) => h.facts.readStreamToArray(stream(tenant, id))
  const types = (events: RecordedEvent[]) => events.map((e) => e.type)

  before(async () => {
    db = await createTestDatabase('ep_example')
    stops.push(() => db.drop())
    nats = await startNatsServer({ withAuth: false })
    stops.push(() => nats.stop())
    nc = await nats.connect()
    await ensureStream(await jetstreamManager(nc))
    const relay = new Relay({ sql: db.connect(ROLES.relay, 3), nc, pollIntervalMs: 100 })
    relay.start()
    stops.push(() => relay.stop())
    Object.assign(h, {
      db,
      intents: new PgEventStore(db.connect(ROLES.intentWriter, 3)),
      facts: new PgEventStore(db.connect(ROLES.factWriter, 4)),
      projector: db.connect(PROJECTOR_ROLE, 4),
    })
    const live = controllerLiveSource(nc, deploymentsController, { ackWaitMs: 1000 })
    const ctl = new ControllerRunner({ controller: deploymentsController, store: h.facts, live, registry })
    stops.push(() => ctl.stop())
    await ctl.start()
  })
  after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {})
  })

  test('every fact caused by an intent shares its correlation id, and causation forms a tree rooted at it', async () => {
    const f = EventFactory.forTenant('acme', { causedBy: 'user:alice', registry })
    const s = stream('acme', 'web')
    const create = f.intent(s, 'create', { image: 'nginx:1.27', replicas: 2 })
    await h.intents.append(s, [create])
    const scale = f.intent(s, 'scale', { replicas: 5 })
    await h.intents.append(s, [scale])
    await eventually(
      async () => types(await readStream('acme', 'web')).includes('scaled'),
      60_000,
      'create and scale reconciled',
    )
    // The scale intent may land before or after the create's facts; its own fact comes last.
    const all = await readStream('acme', 'web')
    assert.deepEqual(types(all).sort(), [
      'create',
      'finalizer_added',
      'finalizer_added',
      'scale',
      'scaled',
      'scheduled',
      'status_changed',
    ])
    assert.deepEqual(all.find((e) => e.type === 'scaled')!.data, { replicas: 5, previous: 2 })
    const chain = await h.facts.readCorrelation('acme', create.event_id)
    assert.deepEqual(types(chain), ['create', 'scheduled', 'finalizer_added', 'finalizer_added', 'status_changed'])
    const seen = new Set<string>()
    for (const e of chain) {
      assert.equal(e.correlation_id, create.event_id)
      if (e.event_id === create.event_id) assert.equal(e.causation_id, null)
      else {
        assert.ok(seen.has(e.causation_id!), 'a parent precedes its child in the log')
        assert.equal(e.caused_by, 'controller:deployments')
      }
      seen.add(e.event_id)
    }
  })

  test('deletion waits for every finalizer, a foreign one included, then records deleted once', async () => {
    const f = EventFactory.forTenant('globex', { causedBy: 'user:bob', registry })
    const s = stream('globex', 'api')
    const status = new ProjectionRunner({
      projection: deploymentStatusProjection,
      sql: h.projector,
      pollIntervalMs: 50,
    })
    const audit = new ProjectionRunner({ projection: auditProjection, sql: h.projector, pollIntervalMs: 50 })
    stops.push(
      () => status.stop(),
      () => audit.stop(),
    )
    await Promise.all([status.start(), audit.start()])
    const create = f.intent(s, 'create', { image: 'api:2', replicas: 1 })
    await h.intents.append(s, [create])
    await eventually(async () => types(await readStream('globex', 'api')).includes('status_changed'), 60_000, 'created')
    const ops = EventFactory.forTenant('globex', { causedBy: 'user:ops', registry })
    await h.facts.append(s, [addFinalizer(ops, s, 'backup-hold')])
    const del = f.intent(s, 'delete', {})
    await h.intents.append(s, [del])
    await eventually(
      async () => (await readStream('globex', 'api')).filter((e) => e.type === 'finalizer_removed').length === 2,
      60_000,
      'own finalizers removed',
    )
    await sleep(500)
    assert.ok(!types(await readStream('globex', 'api')).includes('deleted'), 'not deleted while backup-hold is left')

    await h.facts.append(s, [removeFinalizer(ops, s, 'backup-hold')])
    await eventually(
      async () => types(await readStream('globex', 'api')).includes('deleted'),
      60_000,
      'deleted after the last finalizer',
    )
    await sleep(300)
    const events = await readStream('globex', 'api')
    assert.equal(events.filter((e) => e.type === 'deleted').length, 1)

    await eventually(
      async () => {
        const rows = await withTenant(
          h.db.connect(ROLES.reader, 1),
          'globex',
          (tx) =>
            tx<{ key: string; state: { deleted: boolean; finalizers: string[]; status: string; replicas: number } }[]>`
          select key, state from eventplane.projection_state where projection = 'deployment_status'`,
        )
        const api = rows.find((r) => r.key === 'api')
        return (
          api?.state.deleted === true &&
          api.state.status === 'deleted' &&
          api.state.finalizers.length === 0 &&
          api.state.replicas === 1
        )
      },
      20_000,
      'deployment_status shows the deletion to the tenant',
    )
    await eventually(
      async () => {
        const [row] = await h.projector<{ state: { events: { type: string }[] } }[]>`
        select state from eventplane.projection_state where projection = 'audit' and tenant_id = 'globex' and key = ${del.event_id}`
        return (
          row?.state.events.map((e) => e.type).join(',') ===
          'delete,deletion_requested,status_changed,finalizer_removed,finalizer_removed'
        )
      },
      20_000,
      'the audit trail of the delete chain',
    )
  })
})
