/**
 * Attack review 2026-12-02: a controller names its facts and parks by UUIDv5 of its name, the trigger's id
 * and a step (runtime `factId`, a public namespace). A tenant knows its own intent's id before it sends it,
 * and the controller's name from the facts it reads. Before this test, the gateway took any UUID: acme could
 * store intents under the ids of the fact and the park its next intent would need, then send that intent.
 * The controller could store neither, nak'ed the intent for ever, and each such intent held one pending ack
 * of the controller's consumer, shared by every tenant: at `max_ack_pending` (1,000 by default, 3,000
 * requests at acme's 100/s) globex's intents were no longer reconciled at all.
 * Real PostgreSQL and a nats-server in the account model; acme uses its own tenant creds.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  type IntentDraft,
  RESERVED_EVENT_ID_VERSION,
  draftIntent,
  isEventplaneError,
  isReservedEventId,
} from '@eventplane/core'
import { type Gateway, Relay, startGateway, submitIntent, submitSubject } from '@eventplane/bus-nats'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { type Controller, ControllerRunner, RECONCILE_FAILED, controllerLiveSource, factId } from '@eventplane/runtime'
import type { NatsConnection } from '@nats-io/transport-node'
import { type BusEnv, createBusEnv, eventually } from '../../packages/bus-nats/test/fixtures.ts'

const encoder = new TextEncoder()

describe('a tenant cannot hold the ids the runtime derives from its intents', () => {
  let env: BusEnv
  let gateway: Gateway
  let relay: Relay
  let runner: ControllerRunner
  let acme: NatsConnection
  let globex: NatsConnection

  const builder: Controller = {
    name: 'builder',
    categories: ['job'],
    async reconcile(event, ctx) {
      await ctx.emit(ctx.fact('built', { job: event.stream.id }))
    },
  }
  const rowsWithId = async (id: string) =>
    Number((await env.db.admin`select count(*) from eventplane.events where event_id = ${id}`)[0]!.count)
  const builtIn = async (tenant: string, id: string) =>
    (await env.facts.readStreamToArray({ tenant, category: 'job', id })).some((e) => e.type === 'built')

  before(async () => {
    env = await createBusEnv('ep_sec_derived_ids')
    gateway = await startGateway({
      nc: await env.natsAs('gateway'),
      store: new PgEventStore(env.db.connect(ROLES.intentWriter, 2)),
    })
    relay = new Relay({ sql: env.db.connect(ROLES.relay, 3), nc: await env.natsAs('relay'), pollIntervalMs: 100 })
    relay.start()
    // One pending ack: what 1,000 poisoned intents would do to the default consumer, done by one.
    runner = new ControllerRunner({
      controller: builder,
      store: env.facts,
      live: controllerLiveSource(await env.natsAs('controller'), builder, { maxAckPending: 1, ackWaitMs: 5000 }),
      retryDelayMs: 20,
      maxRetryDelayMs: 200,
    })
    await runner.start()
    acme = await env.server.connect('acme')
    globex = await env.server.connect('globex')
  })
  after(async () => {
    await runner?.stop()
    await gateway?.stop()
    await relay?.stop()
    await env?.cleanup()
  })

  test('an intent under a controller’s fact or park id is refused at the gateway, nothing written, and both tenants’ intents are reconciled', async () => {
    const next = draftIntent({ tenant: 'acme', category: 'job', id: 'j1' }, 'run', {})
    const claims = ['built', RECONCILE_FAILED].map((step) => factId('builder', next.event_id, step))
    for (const id of claims) {
      assert.ok(isReservedEventId(id), `the runtime's ids are UUIDv${RESERVED_EVENT_ID_VERSION}`)
      // As a client that skips draftIntent's checks sends it: by hand, on acme's own submit subject.
      const claim: IntentDraft = {
        ...draftIntent({ tenant: 'acme', category: 'note', id: 'n1' }, 'noted', {}),
        event_id: id,
        correlation_id: id,
      }
      const msg = await acme.request(
        submitSubject('acme', 'note', 'n1'),
        encoder.encode(JSON.stringify({ event: claim })),
        {
          timeout: 10_000,
        },
      )
      const reply = msg.json<{ error?: { code: string; details?: Record<string, unknown> } }>()
      assert.equal(reply.error?.code, 'core.invalid_envelope', `refused: ${JSON.stringify(reply)}`)
      assert.deepEqual(reply.error?.details, { reserved_version: RESERVED_EVENT_ID_VERSION })
      assert.equal(await rowsWithId(id), 0, 'nothing written under the id')
      // draftIntent refuses it before anything is sent.
      assert.throws(
        () => draftIntent({ tenant: 'acme', category: 'note', id: 'n1' }, 'noted', {}, { eventId: id }),
        (e: unknown) => isEventplaneError(e, 'core.invalid_envelope'),
      )
    }
    await submitIntent(acme, next)
    await submitIntent(globex, draftIntent({ tenant: 'globex', category: 'job', id: 'g1' }, 'run', {}))
    await eventually(async () => (await builtIn('acme', 'j1')) && (await builtIn('globex', 'g1')), 'both facts', 30_000)
    assert.deepEqual(
      (await env.facts.readStreamToArray({ tenant: 'acme', category: 'job', id: 'j1' })).map((e) => [
        e.type,
        e.event_id,
      ]),
      [
        ['run', next.event_id],
        ['built', claims[0]],
      ],
      'acme’s fact under the id the runtime derived',
    )
  })
})
