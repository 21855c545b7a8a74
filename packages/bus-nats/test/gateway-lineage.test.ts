import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { type ValidEnvelope, EventFactory } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import type { NatsConnection } from '@nats-io/transport-node'
import { submitIntent } from '../src/gateway-client.ts'
import { type Gateway, startGateway } from '../src/gateway.ts'
import { FOREIGN_CAUSATION_MESSAGE } from '../src/gateway-request.ts'
import { submitSubject } from '../src/subjects.ts'
import { type BusEnv, createBusEnv, within } from './fixtures.ts'

const web = { category: 'deployment', id: 'web' }
const encoder = new TextEncoder()

describe('gateway: a child never leaves its parent tenant (invariant 2)', () => {
  let env: BusEnv
  let gateway: Gateway
  let acme: NatsConnection
  const alice = EventFactory.forTenant('acme', { causedBy: 'user:alice' })
  const mallory = EventFactory.forTenant('globex', { causedBy: 'user:mallory' })
  let acmeRoot: ValidEnvelope
  let globexRoot: ValidEnvelope

  async function rowCount(): Promise<number> {
    const [row] = await env.db.admin<{ n: number }[]>`select count(*)::int as n from eventplane.events`
    return row!.n
  }

  /** The raw reply to `event` submitted as acme, and how many rows it wrote. */
  async function submitRaw(event: ValidEnvelope): Promise<{ reply: Record<string, unknown>; written: number }> {
    const before = await rowCount()
    const subject = submitSubject('acme', event.stream.category, event.stream.id)
    const msg = await acme.request(subject, encoder.encode(JSON.stringify({ event })), { timeout: 5000 })
    return { reply: msg.json(), written: (await rowCount()) - before }
  }

  /** An acme intent that names `parent` as its cause, with `correlation` as its chain. */
  function childOf(parent: { event_id: string }, correlation: string): ValidEnvelope {
    const own = alice.intent(web, 'scale_requested', { replicas: 2 })
    return { ...own, causation_id: parent.event_id, correlation_id: correlation }
  }

  before(async () => {
    env = await createBusEnv('ep_gw_lineage')
    gateway = await startGateway({
      nc: await env.natsAs('gateway'),
      store: new PgEventStore(env.db.connect(ROLES.intentWriter, 4)),
    })
    acme = await env.server.connect('acme')
    acmeRoot = alice.intent(web, 'deploy_requested', { replicas: 1 })
    await submitIntent(acme, acmeRoot)
    globexRoot = mallory.intent(web, 'deploy_requested', { replicas: 1 })
    await env.intents.append({ tenant: 'globex', ...web }, [globexRoot])
  })
  after(async () => {
    await within(gateway?.stop() ?? Promise.resolve(), 10_000, 'gateway stop').catch(() => {})
    await env?.cleanup()
  })

  test('a child of an event of its own tenant and chain is recorded with its lineage', async () => {
    const child = alice.causedBy(acmeRoot).intent(web, 'scale_requested', { replicas: 3 })
    const ok = await submitIntent(acme, child)
    assert.equal(ok.correlation_id, acmeRoot.correlation_id)
    const [row] = await env.db.admin<{ causation_id: string; correlation_id: string }[]>`
      select causation_id::text, correlation_id::text from eventplane.events where event_id = ${ok.event_id}::uuid`
    assert.deepEqual(row, { causation_id: acmeRoot.event_id, correlation_id: acmeRoot.correlation_id })
  })

  test('a cause in another tenant and a cause that exists nowhere get the same refusal; nothing is written', async () => {
    const foreign = await submitRaw(childOf(globexRoot, globexRoot.correlation_id))
    const absentId = randomUUID()
    const absent = await submitRaw(childOf({ event_id: absentId }, absentId))
    assert.equal(foreign.written, 0, 'nothing written for a cause in globex')
    assert.equal(absent.written, 0, 'nothing written for an absent cause')
    const expected = { error: { code: 'core.invalid_envelope', message: FOREIGN_CAUSATION_MESSAGE } }
    assert.deepEqual(foreign.reply, expected, "globex's event is refused")
    assert.deepEqual(absent.reply, foreign.reply, 'the reply does not tell whether the id exists in another tenant')
  })

  test('a cause of its own tenant in another correlation chain is refused', async () => {
    const { reply, written } = await submitRaw(childOf(acmeRoot, randomUUID()))
    assert.equal(written, 0)
    assert.deepEqual(reply, { error: { code: 'core.invalid_envelope', message: FOREIGN_CAUSATION_MESSAGE } })
  })
})
