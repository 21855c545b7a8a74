/**
 * The reply-subject attack (issue 10): NATS authorizes the subject a client
 * publishes to, never the reply subject that the server or a service later
 * answers on. Every request a tenant may send that gets answered, paired with
 * every reply subject an attacker would pick, must leave the log untouched:
 * the stream, every consumer and every count as they were, nothing on a log
 * subject, no other tenant reached; the answers land in the attacker's own
 * account. Sent by the tenant's real user and by a user with no user-level
 * grants in the tenant's account, so the account boundary is shown to hold
 * on its own.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventFactory } from '@eventplane/core'
import { type Gateway, Relay, STREAM_NAME, ensureConsumer, startGateway } from '@eventplane/bus-nats'
import { ROLES, PgEventStore } from '@eventplane/store-pg'
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import { type BusEnv, appendIntents, createBusEnv, eventually } from '../../packages/bus-nats/test/fixtures.ts'
import { type BusState, Spy, busState } from './support/bus-state.ts'

/** Reply subjects an attacker would choose: the JetStream API, log subjects, another tenant's inbox. */
const TARGETS = [
  '$JS.API.STREAM.DELETE.EVENTPLANE',
  '$JS.API.STREAM.PURGE.EVENTPLANE',
  '$JS.API.STREAM.UPDATE.EVENTPLANE',
  '$JS.API.STREAM.MSG.DELETE.EVENTPLANE',
  '$JS.API.CONSUMER.DELETE.EVENTPLANE.globex_tail',
  '$JS.API.CONSUMER.DELETE.EVENTPLANE.ctl_victim',
  '$JS.API.CONSUMER.MSG.NEXT.EVENTPLANE.globex_tail',
  'eventplane.fact.acme.deployment.rx',
  'eventplane.fact.globex.deployment.rx',
  '_INBOX_globex.stolen',
] as const

interface Probe {
  name: string
  subject: string
  body: () => string
  /** The server or a service certainly answers it (so the test waits for the answer to arrive). */
  answered: boolean
}

describe('reply subjects: no request of a tenant, with any reply subject, reaches the JetStream API or the log', () => {
  let env: BusEnv
  let gateway: Gateway
  let operator: JetStreamManager
  let ackSubject = ''
  const intent = EventFactory.forTenant('acme', { causedBy: 'user:test' }).intent(
    { category: 'deployment', id: 'rx' },
    'scaled',
    { n: 1 },
  )

  before(async () => {
    env = await createBusEnv('ep_replymx')
    operator = await jetstreamManager(await env.natsAs('operator'))
    await ensureConsumer(await jetstreamManager(await env.natsAs('controller')), {
      name: 'ctl_victim',
      filter: { kind: 'intent' },
    })
    // A log with both tenants' events, published by the relay, which then stops: from here on
    // nothing may add a message to the stream.
    await appendIntents(env.intents, 'acme', 3, 3, 'a')
    await appendIntents(env.intents, 'globex', 3, 3, 'g')
    const relay = new Relay({ sql: env.db.connect(ROLES.relay, 2), nc: await env.natsAs('relay'), name: 'mx' })
    relay.start()
    await eventually(
      async () => (await operator.streams.info(STREAM_NAME).catch(() => undefined))?.state.messages === 6,
      'relay publishes',
    )
    await relay.stop()
    // acme consumes and acks all it has, keeping one ack subject to aim acks with.
    const consumer = await jetstream(await env.server.connect('acme')).consumers.get(STREAM_NAME, 'acme_tail')
    for (let i = 0; i < 3; i++) {
      const m = await consumer.next({ expires: 5000 })
      assert.ok(m, 'acme has three events')
      ackSubject = (m as unknown as { reply: string }).reply
      await m.ackAck()
    }
    // An empty pull moves the consumer past globex's messages, and an ack after it moves the ack
    // floor there too: effects of acme's own pulls and acks, settled before the attack starts.
    assert.equal(await consumer.next({ expires: 1000 }), null)
    await (await env.server.connect('acme')).request(ackSubject, '+ACK', { timeout: 2000 })
    gateway = await startGateway({
      nc: await env.natsAs('gateway'),
      store: new PgEventStore(env.db.connect(ROLES.intentWriter, 2)),
    })
  })
  after(async () => {
    await gateway?.stop()
    await env?.cleanup()
  })

  const probes = (): Probe[] => [
    {
      name: 'pull no_wait',
      subject: '$JS.API.CONSUMER.MSG.NEXT.EVENTPLANE.acme_tail',
      body: () => '{"batch":1,"no_wait":true}',
      answered: true,
    },
    {
      name: 'pull with expiry',
      subject: '$JS.API.CONSUMER.MSG.NEXT.EVENTPLANE.acme_tail',
      body: () => '{"batch":1,"expires":200000000}',
      answered: true,
    },
    { name: 'account info', subject: '$JS.API.INFO', body: () => '', answered: false },
    { name: 'consumer info', subject: '$JS.API.CONSUMER.INFO.EVENTPLANE.acme_tail', body: () => '', answered: true },
    {
      name: 'consumer create',
      subject: '$JS.API.CONSUMER.CREATE.EVENTPLANE.acme_rx.eventplane.*.acme.>',
      body: () =>
        JSON.stringify({
          stream_name: STREAM_NAME,
          config: { durable_name: 'acme_rx', filter_subject: 'eventplane.*.acme.>', ack_policy: 'explicit' },
        }),
      answered: false,
    },
    {
      name: 'submit, valid',
      subject: 'eventplane-api.submit.acme.deployment.rx',
      body: () => JSON.stringify({ event: intent }),
      answered: true,
    },
    { name: 'submit, invalid', subject: 'eventplane-api.submit.acme.deployment.rx', body: () => '{}', answered: true },
    { name: 'ack', subject: ackSubject, body: () => '+ACK', answered: false },
    { name: 'nak', subject: ackSubject, body: () => '-NAK', answered: false },
    { name: 'ack and next', subject: ackSubject, body: () => '+NXT {"batch":1,"no_wait":true}', answered: false },
  ]

  test('every request × reply target leaves the stream, every consumer and every count unchanged', async () => {
    const before = await busState(operator)
    assert.ok(before.stream, 'the stream exists')
    assert.ok(Object.keys(before.consumers).length >= 7, 'tenant and system consumers exist')
    const rows = async () => Number((await env.db.admin`select count(*) from eventplane.events`)[0]!.count)
    const rowsBefore = await rows()
    // Spies where nothing may arrive: the log account's log and API subjects, globex's inbox and tail.
    const logSide = new Spy(await env.natsAs('operator'), [
      'eventplane.>',
      ...TARGETS.filter((t) => t.startsWith('$JS.API.') && !t.includes('MSG.NEXT')),
    ])
    const globex = await env.server.connect('globex')
    const globexSide = new Spy(globex, ['_INBOX_globex.>', 'eventplane.*.globex.>'])
    // Where the answers must land: the attacker's own account.
    const own = new Spy(await env.server.connectAccountUser('acme'), ['>'])
    await Promise.all([logSide, globexSide].map(() => env.server.connect('operator').then((nc) => nc.flush())))

    const attackers: Array<[string, NatsConnection]> = [
      ['tenant user', await env.server.connect('acme')],
      ['account user without grants', await env.server.connectAccountUser('acme')],
    ]
    const expected = new Map<string, number>()
    for (const [, nc] of attackers) {
      for (const probe of probes()) {
        for (const target of TARGETS) {
          nc.publish(probe.subject, probe.body(), { reply: target })
          // The tenant user may not publish some probes at all; the server refuses those itself.
          const permitted = nc === attackers[0]![1] ? !['account info', 'consumer create'].includes(probe.name) : true
          if (probe.answered && permitted) expected.set(target, (expected.get(target) ?? 0) + 1)
        }
      }
      await nc.flush()
    }
    await eventually(
      () => [...expected].every(([target, n]) => own.count(target) >= n),
      'every answer to arrive in acme’s own account',
      10_000,
    ).catch(() => {})
    const missing = [...expected].filter(([target, n]) => own.count(target) < n)
    const afterState: BusState = await busState(operator)

    assert.deepEqual(afterState, before, 'stream and consumers unchanged')
    assert.deepEqual([...logSide.seen], [], 'nothing reached a log subject or the JetStream API in the log account')
    assert.deepEqual([...globexSide.seen], [], "nothing reached globex's inbox or tail")
    assert.deepEqual(missing, [], 'every answer landed in the attacker’s own account, on the subject it chose')
    // Answers are counted per reply subject over all probes, so the wait above can end before the
    // submit's own reply arrived: wait for its row, then check nothing else was written.
    await eventually(async () => (await rows()) >= rowsBefore + 1, 'the valid intent to be recorded', 10_000)
    await gateway.stop()
    assert.equal(await rows(), rowsBefore + 1, 'the valid intent was recorded once, nothing else was written')
    assert.equal(gateway.dropped, 0, 'every submit came through the import with a mapped reply')
    for (const spy of [logSide, globexSide, own]) spy.stop()
  })
})
