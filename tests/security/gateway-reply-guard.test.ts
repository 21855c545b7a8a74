/**
 * Defense in depth behind the account boundary (issue 10): the gateway answers
 * only reply subjects in the requesting tenant's own space, `_R_.` (a reply
 * mapped back into a tenant account by its import) or `_INBOX_<tenant>.`.
 * Sent from inside the log account (where no import maps the reply), a
 * request that asks for its answer on a log subject, the JetStream API or
 * another tenant's inbox is dropped unprocessed, counted and logged by ids.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventFactory } from '@eventplane/core'
import { type Gateway, STREAM_NAME, startGateway, submitSubject } from '@eventplane/bus-nats'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import { type BusEnv, createBusEnv, eventually } from '../../packages/bus-nats/test/fixtures.ts'
import { Spy } from './support/bus-state.ts'
import { captureLogger } from './support/capture-logger.ts'

const MARKER = 'guarded-data-9c2e'

describe('the gateway answers only in the requesting tenant’s reply space', () => {
  let env: BusEnv
  let gateway: Gateway
  let operator: NatsConnection
  const log = captureLogger()
  const rows = async () => Number((await env.db.admin`select count(*) from eventplane.events`)[0]!.count)
  const acme = EventFactory.forTenant('acme', { causedBy: 'user:test' })
  const body = (id: string) =>
    JSON.stringify({ event: acme.intent({ category: 'deployment', id }, 'scaled', { marker: MARKER }) })

  before(async () => {
    env = await createBusEnv('ep_gwguard')
    gateway = await startGateway({
      nc: await env.natsAs('gateway'),
      store: new PgEventStore(env.db.connect(ROLES.intentWriter, 2)),
      logger: log.logger,
    })
    operator = await env.natsAs('operator')
  })
  after(async () => {
    await gateway?.stop()
    await env?.cleanup()
  })

  test('a request with a reply on a log subject, the JetStream API, another tenant’s inbox or none is dropped unprocessed', async () => {
    const targets = [
      'eventplane.fact.acme.deployment.g1',
      'eventplane.intent.globex.deployment.g1',
      '$JS.API.STREAM.DELETE.EVENTPLANE',
      '$JS.API.CONSUMER.DELETE.EVENTPLANE.globex_tail',
      '_INBOX_globex.stolen',
      '_INBOX.shared',
    ]
    const spy = new Spy(await env.natsAs('operator'), [
      'eventplane.>',
      ...targets.filter((t) => !t.startsWith('eventplane.')),
    ])
    await operator.flush()
    const jsm = await jetstreamManager(operator)
    const streamBefore = (await jsm.streams.info(STREAM_NAME)).state
    const rowsBefore = await rows()
    const subject = submitSubject('acme', 'deployment', 'g1')
    for (const reply of targets) operator.publish(subject, body('g1'), { reply })
    operator.publish(subject, body('g1')) // no reply at all
    await operator.flush()
    // A request with a reply in acme's space, sent after the others, is served: the gateway is done with them.
    const served = await operator.request(subject, body('g1'), { timeout: 5000, noMux: true, reply: '_INBOX_acme.ok' })
    assert.ok('ok' in served.json<object>(), served.string())
    assert.equal(gateway.dropped, targets.length + 1, 'every request without a reply in acme’s space was dropped')

    assert.deepEqual([...spy.seen], [], 'no answer was sent anywhere')
    assert.equal(await rows(), rowsBefore + 1, 'only the served request was recorded')
    assert.deepEqual((await jsm.streams.info(STREAM_NAME)).state.consumer_count, streamBefore.consumer_count)
    const drops = log.lines.filter((l) => l.includes('request dropped'))
    assert.equal(drops.length, targets.length + 1)
    assert.ok(
      drops.every((l) => l.includes(`"subject":"${subject}"`) && !l.includes(MARKER)),
      'ids only',
    )
    spy.stop()
  })

  test('a flood of requests without a reply is counted in full but logged one by one only up to a budget', async () => {
    const subject = submitSubject('acme', 'deployment', 'g2')
    const droppedBefore = gateway.dropped
    const linesBefore = log.lines.filter((l) => l.includes('request dropped')).length
    for (let i = 0; i < 500; i++) operator.publish(subject, body('g2'))
    await operator.flush()
    await eventually(() => gateway.dropped === droppedBefore + 500, 'the gateway to drop all 500')
    const lines = log.lines.filter((l) => l.includes('request dropped')).length - linesBefore
    assert.ok(lines <= 100, `${lines} log lines for 500 drops`)
  })
})
