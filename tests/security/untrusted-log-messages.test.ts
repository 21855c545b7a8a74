/**
 * Defense in depth behind the account boundary (issue 10): every consumer of
 * the log (core tail, a tenant's pull subscription, the runtime's JetStream
 * source) accepts a message only as the relay publishes it, with its headers
 * and on its own subject. Messages injected by the operator onto a log
 * subject are counted, logged by ids and dropped (JetStream: terminated);
 * the relay's next event still arrives.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventFactory, type RecordedEvent } from '@eventplane/core'
import { Relay, STREAM_NAME, encodeEvent, eventHeaders, logSubject, subscribe, tail } from '@eventplane/bus-nats'
import { jetStreamSource } from '@eventplane/runtime'
import { ROLES } from '@eventplane/store-pg'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { type BusEnv, appendIntents, createBusEnv, eventually, within } from '../../packages/bus-nats/test/fixtures.ts'
import { captureLogger } from './support/capture-logger.ts'

const MARKER = 'injected-data-4e1d'

/** A complete recorded event that the store never recorded. */
function fakeEvent(tenant: string, id: string): RecordedEvent {
  const intent = EventFactory.forTenant(tenant, { causedBy: 'user:mallory' }).intent(
    { category: 'deployment', id },
    'scaled',
    { marker: MARKER },
  )
  return { ...intent, stream_version: 1, global_position: 9999n, tx_id: 9999n, recorded_at: new Date().toISOString() }
}

describe('consumers of the log accept only what the relay publishes, on its own subject', () => {
  let env: BusEnv
  const target = logSubject('intent', 'acme', 'deployment', 'inj')

  before(async () => {
    env = await createBusEnv('ep_untrusted')
  })
  after(async () => {
    await env?.cleanup()
  })

  test('a message without relay headers, ones whose headers disagree (event id, tenant, position, tx id), and one on a subject its envelope does not name are dropped by tail, subscribe and the runtime source', async () => {
    const log = captureLogger()
    const acme = await env.server.connect('acme')
    const live = await tail(acme, { tenant: 'acme' }, { logger: log.logger })
    const sub = await subscribe(jetstream(acme), { consumer: 'acme_ctl', logger: log.logger })
    const source = jetStreamSource({
      nc: await env.natsAs('controller'),
      consumer: 'ctl_untrusted',
      filter: { tenant: 'acme' },
      logger: log.logger,
    })
    await source.prepare()
    const runtime = await source.open(new AbortController().signal)
    const operator = await env.natsAs('operator')
    const js = jetstream(operator)
    // Active before the injection: a relay becoming active on a stream whose last message is not an event of the
    // log refuses to publish into it (relay-resume.test.ts); one already running goes on with the log.
    const relay = new Relay({ sql: env.db.connect(ROLES.relay, 2), nc: await env.natsAs('relay'), name: 'inj' })
    relay.start()
    await eventually(() => relay.state === 'active', 'the relay to be active')

    try {
      await injectAndCheck()
    } finally {
      // Stopped on a failure too: a consumer left running keeps the file's cleanup waiting until its timeout.
      await Promise.all([live.stop(), sub.stop(), runtime.stop()])
    }

    async function injectAndCheck(): Promise<void> {
      const unheaded = fakeEvent('acme', 'inj')
      await js.publish(target, encodeEvent(unheaded), { msgID: unheaded.event_id })
      const lying = fakeEvent('acme', 'inj')
      const lyingHeaders = eventHeaders(lying)
      lyingHeaders.set('Nats-Msg-Id', fakeEvent('acme', 'inj').event_id)
      await js.publish(target, encodeEvent(lying), { headers: lyingHeaders })
      // Headers that name another tenant, or another position or transaction, than the body they come with.
      for (const [header, value] of [
        ['Eventplane-Tenant', 'globex'],
        ['Eventplane-Position', '1'],
        ['Eventplane-Tx-Id', '1'],
      ]) {
        const e = fakeEvent('acme', 'inj')
        const h = eventHeaders(e)
        h.set(header!, value!)
        await js.publish(target, encodeEvent(e), { headers: h })
      }
      // A globex event, headers and all, copied onto acme's subject: its envelope names another subject.
      const moved = fakeEvent('globex', 'inj')
      await js.publish(target, encodeEvent(moved), { headers: eventHeaders(moved) })
      // Relay headers over a body that is no event: a reply that landed on a log subject, dressed up.
      const dressed = eventHeaders(fakeEvent('acme', 'inj'))
      await js.publish(target, '{"ok":"a reply that landed on a log subject"}', { headers: dressed })

      try {
        const [good] = await appendIntents(env.intents, 'acme', 1, 1, 'good')
        const first = async <T>(it: AsyncIterable<T>, what: string): Promise<T> => {
          const r = await within(it[Symbol.asyncIterator]().next(), 20_000, what)
          assert.equal(r.done, false, `${what} ended`)
          return r.value
        }
        assert.equal((await first(live, 'tail')).event_id, good!.event_id)
        const delivered = await first(sub, 'subscribe')
        assert.equal(delivered.event.event_id, good!.event_id)
        await delivered.ack()
        const fromRuntime = await first(runtime, 'runtime source')
        assert.equal(fromRuntime.event.event_id, good!.event_id)
        await fromRuntime.ack()
      } finally {
        await relay.stop()
      }
      assert.equal(live.dropped, 7, 'tail counted every injected message')
      assert.equal(sub.dropped, 7, 'subscribe counted every injected message')
      assert.equal((runtime as typeof sub).dropped, 7, 'the runtime source counted every injected message')
      // Terminated, not left pending: the consumers are past all of it.
      const jsm = await jetstreamManager(operator)
      const last = (await jsm.streams.info(STREAM_NAME)).state.last_seq
      for (const name of ['acme_ctl', 'ctl_untrusted']) {
        const info = await jsm.consumers.info(STREAM_NAME, name)
        assert.equal(info.num_ack_pending, 0, `${name}: nothing pending`)
        assert.equal(info.ack_floor.stream_seq, last, `${name}: acked or terminated up to the end`)
      }
      const refusals = log.lines.filter((l) => l.includes('untrusted log message'))
      assert.equal(refusals.length, 21, 'each consumer logged each refusal')
      for (const reason of ['no_relay_headers', 'headers_disagree', 'subject_disagrees', 'undecodable'])
        assert.ok(
          refusals.some((l) => l.includes(`"reason":"${reason}"`)),
          reason,
        )
      assert.ok(!log.lines.some((l) => l.includes(MARKER)), 'no content of an injected message is logged')
    }
  })
})
