import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventFactory } from '@eventplane/core'
import { Relay } from '@eventplane/bus-nats'
import { startNatsServer, type TestNatsServer } from '@eventplane/bus-nats/testing'
import { domain } from '@eventplane/example-deployments'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { createTestDatabase, eventually, type TestDatabase } from '@eventplane/store-pg/testing'
import { killAll, startCli } from './helpers.ts'

describe('evtctl subscribe <controller> as its own process', () => {
  let db: TestDatabase
  let nats: TestNatsServer
  let relay: Relay

  before(async () => {
    db = await createTestDatabase('ep_cli_sub_ctl')
    nats = await startNatsServer({ withAuth: false })
    relay = new Relay({ sql: db.connect(ROLES.relay, 3), nc: await nats.connect(), pollIntervalMs: 200 })
    relay.start()
  })
  after(async () => {
    killAll()
    await relay?.stop()
    await nats?.stop()
    await db?.drop()
  })

  test('subscribe deployments reconciles an intent into facts caused by it, and stops on SIGINT', async () => {
    const env = { EVENTPLANE_DATABASE_URL: db.url, EVENTPLANE_NATS_URL: nats.url }
    const cli = startCli(['subscribe', 'deployments', '--domain', '@eventplane/example-deployments', '--json'], { env })
    const ready = await cli.waitFor((out) => out.includes('"ready":true'), 30_000)
    assert.deepEqual(JSON.parse(ready.split('\n')[0]!), { ready: true, kind: 'controller', name: 'deployments' })

    const web = { tenant: 'acme', category: 'deployment', id: 'web' }
    const intent = EventFactory.forTenant('acme', { causedBy: 'user:alice', registry: domain.registry() }).intent(
      web,
      'create',
      { image: 'nginx:1.27', replicas: 2 },
    )
    await new PgEventStore(db.connect(ROLES.intentWriter, 1)).append(web, [intent])
    const facts = () => db.admin<{ type: string; causation_id: string; caused_by: string }[]>`
      select type, causation_id::text, caused_by from eventplane.events
       where stream_id = 'web' and kind = 'fact' order by stream_version`
    await eventually(
      async () => (await facts()).some((f) => f.type === 'status_changed'),
      60_000,
      'the controller process to reconcile the intent',
    )
    const reconciled = await facts()
    assert.deepEqual(
      reconciled.map((f) => f.type),
      ['scheduled', 'finalizer_added', 'finalizer_added', 'status_changed'],
    )
    for (const f of reconciled) {
      assert.equal(f.causation_id, intent.event_id, `${f.type} is caused by the intent`)
      assert.equal(f.caused_by, 'controller:deployments')
    }

    cli.child.kill('SIGINT')
    const r = await cli.done(20_000)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /"stopped":true/)
  })
})
