import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { Type } from '@sinclair/typebox'
import {
  type EventEnvelope,
  EventFactory,
  type IntentDraft,
  draftIntent,
  SchemaRegistry,
  isEventplaneError,
} from '@eventplane/core'
import { PgEventStore, ROLES, connectPg } from '@eventplane/store-pg'
import { closePool } from '@eventplane/store-pg/testing'
import type { NatsConnection } from '@nats-io/transport-node'
import { submitIntent } from '../src/gateway-client.ts'
import { type Gateway, startGateway } from '../src/gateway.ts'
import { submitSubject } from '../src/subjects.ts'
import { type BusEnv, createBusEnv, within } from './fixtures.ts'

const registry = new SchemaRegistry()
  .register(
    'deploy_requested',
    1,
    Type.Object({ replicas: Type.Integer({ minimum: 1 }), note: Type.Optional(Type.String()) }),
  )
  .register('config_changed', 1, Type.Object({ key: Type.String() }))
  .register('labels_set', 1, Type.Object({}, { additionalProperties: Type.Integer() }))

const encoder = new TextEncoder()
const d1 = { tenant: 'acme', category: 'deployment', id: 'd1' }

describe('gateway', () => {
  let env: BusEnv
  let gateway: Gateway
  let acme: NatsConnection
  const user = EventFactory.forTenant('acme', { causedBy: 'user:alice' })

  async function rowCount(): Promise<number> {
    const [row] = await env.db.admin<{ n: number }[]>`select count(*)::int as n from eventplane.events`
    return row!.n
  }

  /** Sends a raw request body on `subject` as tenant acme and returns the parsed reply. */
  async function raw(
    subject: string,
    body: string | Uint8Array,
  ): Promise<{ ok?: unknown; error?: { code: string; message: string } }> {
    const msg = await acme.request(subject, typeof body === 'string' ? encoder.encode(body) : body, { timeout: 5000 })
    return msg.json()
  }

  async function assertRejected(code: string, send: () => Promise<unknown>): Promise<void> {
    const before = await rowCount()
    await assert.rejects(send, (e: unknown) => {
      assert.ok(isEventplaneError(e), `a typed error, got ${String(e)}`)
      assert.equal(e.code, code)
      assert.ok(!e.message.includes('\n'), 'a one-line message')
      return true
    })
    assert.equal(await rowCount(), before, 'nothing was written')
  }

  async function assertRawRejected(code: string, subject: string, body: string | Uint8Array): Promise<void> {
    const before = await rowCount()
    const reply = await raw(subject, body)
    assert.equal(reply.error?.code, code, JSON.stringify(reply))
    assert.equal(await rowCount(), before, 'nothing was written')
  }

  before(async () => {
    env = await createBusEnv('ep_gateway')
    gateway = await startGateway({
      nc: await env.natsAs('gateway'),
      store: new PgEventStore(env.db.connect(ROLES.intentWriter, 4), { registry }),
      registry,
    })
    acme = await env.server.connect('acme')
  })
  after(async () => {
    await within(gateway?.stop() ?? Promise.resolve(), 10_000, 'gateway stop').catch(() => {})
    await env?.cleanup()
  })

  test('a good request is recorded as an intent stamped by the edge and answered with its position', async () => {
    const event = user.intent(d1, 'deploy_requested', { replicas: 3 })
    const ok = await submitIntent(acme, { ...event, caused_by: 'controller:pretender' } as IntentDraft, {
      principal: 'user:alice',
      expectedVersion: 'no_stream',
    })
    assert.equal(ok.event_id, event.event_id)
    assert.equal(ok.correlation_id, event.event_id)
    assert.equal(ok.stream_version, 1)
    assert.match(ok.position, /^\d+$/)
    const [stored] = await new PgEventStore(env.db.connect(ROLES.reader, 1)).readStreamToArray(d1)
    assert.equal(stored!.event_id, event.event_id)
    assert.equal(stored!.kind, 'intent')
    assert.equal(stored!.global_position.toString(), ok.position)
    assert.equal(stored!.caused_by, 'nats:acme/user:alice', 'caused_by is stamped by the gateway, scoped to the tenant')
  })

  test('an unstamped draft (no caused_by on the wire) is recorded with the edge stamp', async () => {
    const d3 = { category: 'deployment', id: 'd3' }
    const draft = draftIntent({ tenant: 'acme', ...d3 }, 'deploy_requested', { replicas: 2 })
    const subject = `eventplane-api.submit.acme.deployment.d3`
    const reply = await raw(subject, JSON.stringify({ event: draft }))
    assert.ok(reply.ok, JSON.stringify(reply))
    const [stored] = await new PgEventStore(env.db.connect(ROLES.reader, 1)).readStreamToArray({
      tenant: 'acme',
      ...d3,
    })
    assert.equal(stored!.event_id, draft.event_id)
    assert.equal(stored!.caused_by, 'nats:acme')
  })

  test('a retry with the same event_id returns the same result and writes nothing new', async () => {
    const event = user.intent(d1, 'deploy_requested', { replicas: 5 })
    const first = await submitIntent(acme, event, { expectedVersion: 1 })
    const rows = await rowCount()
    const retry = await submitIntent(acme, event, { expectedVersion: 1 })
    assert.deepEqual(retry, first)
    assert.equal(await rowCount(), rows)
  })

  test('without a principal header the intent is stamped nats:<tenant>', async () => {
    const d2 = { tenant: 'acme', category: 'deployment', id: 'd2' }
    const ok = await submitIntent(acme, user.intent(d2, 'deploy_requested', { replicas: 1 }))
    const [stored] = await new PgEventStore(env.db.connect(ROLES.reader, 1)).readStreamToArray(d2)
    assert.equal(stored!.event_id, ok.event_id)
    assert.equal(stored!.caused_by, 'nats:acme')
  })

  test('an envelope for another tenant than the subject is refused with core.tenant_mismatch', async () => {
    const globex = EventFactory.forTenant('globex', { causedBy: 'user:mallory' }).intent(
      { category: 'deployment', id: 'd1' },
      'deploy_requested',
      { replicas: 1 },
    )
    await assertRawRejected(
      'core.tenant_mismatch',
      submitSubject('acme', 'deployment', 'd1'),
      JSON.stringify({ event: globex }),
    )
  })

  test('a child envelope for another tenant or stream is refused as a mismatch before its lineage is looked up', async () => {
    // Its cause is an event nowhere in the log: looked up under the subject's tenant it would be core.invalid_envelope.
    const subject = submitSubject('acme', 'deployment', 'd1')
    const child = (factory: EventFactory, id: string) => {
      const parent = factory.intent({ category: 'deployment', id }, 'deploy_requested', { replicas: 1 })
      return factory.causedBy(parent).intent({ category: 'deployment', id }, 'deploy_requested', { replicas: 2 })
    }
    const mallory = EventFactory.forTenant('globex', { causedBy: 'user:mallory' })
    await assertRawRejected('core.tenant_mismatch', subject, JSON.stringify({ event: child(mallory, 'd1') }))
    await assertRawRejected('core.stream_mismatch', subject, JSON.stringify({ event: child(user, 'other') }))
  })

  test('an envelope for another stream than the subject is refused with core.stream_mismatch', async () => {
    const event = user.intent({ category: 'deployment', id: 'other' }, 'deploy_requested', { replicas: 1 })
    await assertRawRejected(
      'core.stream_mismatch',
      submitSubject('acme', 'deployment', 'd1'),
      JSON.stringify({ event }),
    )
  })

  test('bad names in the subject are refused with core.invalid_name', async () => {
    const body = JSON.stringify({ event: user.intent(d1, 'deploy_requested', { replicas: 1 }) })
    for (const subject of [
      'eventplane-api.submit.acme.deploy$ment.d1',
      'eventplane-api.submit.acme.deployment.*',
      'eventplane-api.submit.acme.deployment.d1.extra',
      'eventplane-api.submit.acme.déploiement.d1',
    ]) {
      await assertRawRejected('core.invalid_name', subject, body)
    }
  })

  test('data that breaks its schema, or has no schema, is refused', async () => {
    await assertRejected('core.schema_violation', () =>
      submitIntent(acme, user.intent(d1, 'deploy_requested', { replicas: 'three' })),
    )
    await assertRejected('core.unknown_schema', () => submitIntent(acme, user.intent(d1, 'never_registered', {})))
  })

  test('an error message naming a client-chosen key with a line break goes out as one line', async () => {
    // The schema error names the failing key: a key with a line break would put a second line in the
    // reply's message, one that a client printing it would show as its own.
    const event = user.intent(d1, 'labels_set', { 'ok\nevtctl: a forged line': 1.5 })
    await assertRejected('core.schema_violation', () => submitIntent(acme, event))
  })

  test('malformed JSON and malformed request bodies are refused with bus.bad_request', async () => {
    const subject = submitSubject('acme', 'deployment', 'd1')
    await assertRawRejected('bus.bad_request', subject, '{"event": ')
    await assertRawRejected('bus.bad_request', subject, new Uint8Array([0xff, 0xfe]))
    await assertRawRejected('bus.bad_request', subject, '[1,2]')
    await assertRawRejected(
      'bus.bad_request',
      subject,
      JSON.stringify({ event: user.intent(d1, 'deploy_requested', { replicas: 1 }), expectedVersion: -1 }),
    )
    await assertRawRejected('core.invalid_envelope', subject, JSON.stringify({ event: { event_id: 'x' } }))
  })

  test('a well-formed request whose string holds a byte that is not UTF-8 is refused, never stored altered', async () => {
    // A lenient decoder would turn the byte into U+FFFD and record data the client never sent.
    const text = JSON.stringify({ event: user.intent(d1, 'deploy_requested', { replicas: 1, note: 'a~b' }) })
    const body = encoder.encode(text)
    const at = body.indexOf(0x7e)
    assert.ok(at > 0 && body.indexOf(0x7e, at + 1) === -1, 'one marker byte')
    body[at] = 0xff
    await assertRawRejected('bus.bad_request', submitSubject('acme', 'deployment', 'd1'), body)
  })

  test('a fact or internal event is refused: the edge accepts intents only', async () => {
    const fact = { ...user.intent(d1, 'deploy_requested', { replicas: 1 }), kind: 'fact' } as EventEnvelope
    await assertRejected('bus.forbidden', () => submitIntent(acme, fact))
    const internal = { ...user.intent(d1, 'deploy_requested', { replicas: 1 }), kind: 'internal' } as EventEnvelope
    await assertRejected('bus.forbidden', () => submitIntent(acme, internal))
  })

  test('oversized data and oversized request bodies are refused with core.payload_too_large', async () => {
    const big = { replicas: 1, note: 'x'.repeat(66 * 1024) }
    const oversizedData = { ...user.intent(d1, 'deploy_requested', { replicas: 1 }), data: big }
    await assertRejected('core.payload_too_large', () => submitIntent(acme, oversizedData))
    // Over the gateway's 80 KiB, under what acme's account may send (128 KiB): refused by the gateway on arrival.
    const bigBody = JSON.stringify({
      event: { ...oversizedData, data: { replicas: 1, note: 'x'.repeat(100 * 1024) } },
    })
    await assertRawRejected('core.payload_too_large', submitSubject('acme', 'deployment', 'd1'), bigBody)
    // Over the account's limit: the server told the client, which refuses to send it at all.
    const hugeData = { ...oversizedData, data: { replicas: 1, note: 'x'.repeat(200 * 1024) } }
    await assertRejected('core.payload_too_large', () => submitIntent(acme, hugeData))
  })

  test('a lost optimistic-concurrency race is reported as store.wrong_expected_version', async () => {
    await assertRejected('store.wrong_expected_version', () =>
      submitIntent(acme, user.intent(d1, 'deploy_requested', { replicas: 2 }), { expectedVersion: 0 }),
    )
  })

  test("a tenant cannot submit on another tenant's subject: bus.forbidden, nothing written", async () => {
    const globexEvent = EventFactory.forTenant('globex', { causedBy: 'user:mallory' }).intent(
      { category: 'deployment', id: 'd1' },
      'deploy_requested',
      { replicas: 1 },
    )
    const before = await rowCount()
    await assert.rejects(submitIntent(acme, globexEvent, { timeoutMs: 1500 }), (e: unknown) =>
      isEventplaneError(e, 'bus.forbidden'),
    )
    assert.equal(await rowCount(), before)
  })

  test('when PostgreSQL is unreachable the reply is store.unavailable; when no gateway serves, bus.timeout', async () => {
    await gateway.stop()
    // The request crosses from the tenant's account into the log account by an import, and
    // nats-server 2.9 reports no "no responders" across accounts: the client times out.
    await assertRejected('bus.timeout', () =>
      submitIntent(acme, user.intent(d1, 'deploy_requested', { replicas: 1 }), { timeoutMs: 1000 }),
    )
    const unreachable = connectPg('postgres://eventplane_intent_writer@127.0.0.1:1/nowhere', {
      max: 1,
      connectTimeout: 2,
    })
    const down = await startGateway({ nc: await env.natsAs('gateway'), store: new PgEventStore(unreachable), registry })
    try {
      await assertRejected('store.unavailable', () =>
        submitIntent(acme, user.intent(d1, 'deploy_requested', { replicas: 1 }), { timeoutMs: 5000 }),
      )
    } finally {
      await down.stop()
      await closePool(unreachable)
    }
  })
})
