import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { type IntentDraft, RESERVED_CATEGORY_PREFIX, isEventplaneError } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import type { NatsConnection } from '@nats-io/transport-node'
import { submitIntent } from '../src/gateway-client.ts'
import { type Gateway, startGateway } from '../src/gateway.ts'
import { Relay } from '../src/relay.ts'
import { type BusEnv, createBusEnv, eventually, streamMessages, within } from './fixtures.ts'

/** A draft built by hand, as a client that skips draftIntent's checks would send it. */
function handDraft(category: string, id: string): IntentDraft {
  const eventId = randomUUID()
  return {
    event_id: eventId,
    tenant_id: 'acme',
    kind: 'intent',
    stream: { category, id },
    type: 'reconcile_started',
    schema_version: 1,
    data: { controller: 'deployer', attempt: 1 },
    correlation_id: eventId,
    causation_id: null,
    occurred_at: new Date().toISOString(),
  }
}

describe('the gateway refuses a tenant intent into a reserved category', () => {
  let env: BusEnv
  let gateway: Gateway
  let relay: Relay
  let acme: NatsConnection
  let operator: NatsConnection

  const categories = async (): Promise<string[]> =>
    (await env.db.admin<{ category: string }[]>`select category from eventplane.events`).map((r) => r.category)

  before(async () => {
    env = await createBusEnv('ep_gw_reserved')
    gateway = await startGateway({
      nc: await env.natsAs('gateway'),
      store: new PgEventStore(env.db.connect(ROLES.intentWriter, 2)),
    })
    relay = new Relay({ sql: env.db.connect(ROLES.relay, 4), nc: await env.natsAs('relay'), name: 'main' })
    relay.start()
    acme = await env.server.connect('acme')
    operator = await env.natsAs('operator')
  })
  after(async () => {
    await within(gateway?.stop() ?? Promise.resolve(), 10_000, 'gateway stop').catch(() => {})
    await within(relay?.stop() ?? Promise.resolve(), 15_000, 'relay stop').catch(() => {})
    await env?.cleanup()
  })

  test('eventplane_reconciles and any eventplane_ category: core.invalid_name, nothing in the log or on the bus', async () => {
    for (const category of ['eventplane_reconciles', 'eventplane_future', 'EventPlane_Reconciles']) {
      await assert.rejects(
        submitIntent(acme, handDraft(category, 'deployer:3f0c2f3e-0000-4000-8000-000000000001')),
        (e: unknown) => {
          assert.ok(isEventplaneError(e, 'core.invalid_name'), `core.invalid_name for ${category}, got ${String(e)}`)
          assert.equal(e.details.reserved, RESERVED_CATEGORY_PREFIX)
          return true
        },
      )
    }
    assert.deepEqual(await categories(), [], 'nothing was written')
    // A good intent after them: the relay publishes the log in order, so once it is on the bus, anything
    // written before it would be too.
    const ok = await submitIntent(acme, handDraft('deployment', 'd1'))
    await eventually(async () => (await streamMessages(operator)).length >= 1, 'the good intent on the bus')
    const published = await streamMessages(operator)
    assert.deepEqual(
      published.map((m) => [m.event.event_id, m.event.stream.category]),
      [[ok.event_id, 'deployment']],
      'only the good intent was published',
    )
    assert.deepEqual(await categories(), ['deployment'])
  })
})
