import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { AckPolicy, JetStreamApiError, jetstream, jetstreamManager } from '@nats-io/jetstream'
import type { JetStreamManager } from '@nats-io/jetstream'
import { PermissionViolationError, RequestError } from '@nats-io/transport-node'
import type { NatsConnection } from '@nats-io/transport-node'
import { ensureStream } from '../src/stream.ts'
import { STREAM_NAME, logFilter, logSubject, submitSubject } from '../src/subjects.ts'
import { startNatsServer } from '../src/testing/index.ts'
import type { TestNatsServer } from '../src/testing/index.ts'

/** nats.js v3 rejects a refused request with a RequestError whose `cause` is the violation. */
function violationOf(e: unknown): PermissionViolationError | undefined {
  if (e instanceof PermissionViolationError) return e
  return e instanceof Error && e.cause instanceof PermissionViolationError ? e.cause : undefined
}

async function assertPublishRefused(attempt: Promise<unknown>, subject: string): Promise<void> {
  await assert.rejects(attempt, (e) => {
    const v = violationOf(e)
    assert.ok(v, `expected a permission violation, got ${String(e)}`)
    assert.equal(v.operation, 'publish')
    assert.equal(v.subject, subject)
    return true
  })
}

/** A refused SUB closes the subscription: `closed` resolves to the violation (and the status iterator reports it). */
async function assertSubscribeRefused(nc: NatsConnection, subject: string): Promise<void> {
  const sub = nc.subscribe(subject)
  const closed = await Promise.race([sub.closed, sleep(3000, 'still open', { ref: false })])
  assert.ok(closed instanceof PermissionViolationError, `subscription to ${subject} was not refused: ${String(closed)}`)
  assert.equal(closed.operation, 'subscription')
  assert.equal(closed.subject, subject)
  assert.equal(sub.isClosed(), true)
}

/**
 * A plain PUB gets no reply: the only signal is the `-ERR` the server sends,
 * which nats.js v3 reports on the connection's status iterator.
 */
function watchViolations(nc: NatsConnection): (subject: string) => Promise<PermissionViolationError> {
  const seen: PermissionViolationError[] = []
  void (async () => {
    for await (const s of nc.status())
      if (s.type === 'error' && s.error instanceof PermissionViolationError) seen.push(s.error)
  })()
  return async (subject) => {
    for (let i = 0; i < 60; i++) {
      const hit = seen.find((v) => v.subject === subject)
      if (hit) return hit
      await sleep(50)
    }
    assert.fail(`no permission violation reported for ${subject}`)
  }
}

describe('NATS accounts and user grants (tenants acme and globex)', () => {
  let server: TestNatsServer
  let operator: JetStreamManager
  let relay: NatsConnection
  const acmeFilter = logFilter({ tenant: 'acme' })
  const globexFilter = logFilter({ tenant: 'globex' })

  before(async () => {
    // Tenants added as `evtctl tenant add` does: accounts, users, consumers <tenant>_tail/_proj/_ctl.
    server = await startNatsServer({ tenants: ['acme', 'globex'] })
    operator = await jetstreamManager(await server.connect('operator'))
    relay = await server.connect('relay')
    await ensureStream(await jetstreamManager(relay))
  })
  after(async () => {
    await server?.stop()
  })

  test("a tenant cannot submit intents on another tenant's subject", async () => {
    const acme = await server.connect('acme')
    const subject = submitSubject('globex', 'x', 'y')
    await assertPublishRefused(acme.request(subject, '{}', { timeout: 2000 }), subject)
  })

  test("a tenant cannot tail another tenant's log subjects, nor the whole log", async () => {
    const acme = await server.connect('acme')
    await assertSubscribeRefused(acme, `eventplane.*.globex.>`)
    await assertSubscribeRefused(acme, 'eventplane.>')
    await assertSubscribeRefused(acme, 'eventplane.*.*.>')
    await assertSubscribeRefused(acme, '>')
  })

  test("a tenant cannot listen on the shared inbox or another tenant's inbox, so never sees their replies", async () => {
    const acme = await server.connect('acme')
    await assertSubscribeRefused(acme, '_INBOX.>')
    await assertSubscribeRefused(acme, '_INBOX_globex.>')
  })

  test('a tenant client without its inbox prefix cannot even make requests', async () => {
    const acme = await server.connect('acme', { inboxPrefix: '_INBOX' })
    await assert.rejects(
      acme.request(submitSubject('acme', 'x', 'y'), '{}', { timeout: 2000 }),
      (e) => violationOf(e)?.operation === 'subscription',
    )
  })

  test('a tenant cannot publish log subjects, not even its own (no forged facts)', async () => {
    const acme = await server.connect('acme')
    const refused = watchViolations(acme)
    const watcher = await server.connect('operator')
    const spy = watcher.subscribe('eventplane.>')
    await watcher.flush()
    const before = (await operator.streams.info(STREAM_NAME)).state.messages
    const subject = logSubject('fact', 'acme', 'x', 'y')
    acme.publish(subject, '{"forged":true}')
    await acme.flush()
    assert.equal((await refused(subject)).operation, 'publish')
    await watcher.flush()
    assert.equal(spy.getReceived(), 0)
    assert.equal((await operator.streams.info(STREAM_NAME)).state.messages, before)
  })

  test('a tenant cannot create a consumer at all: not on its own subjects, not on others, not without a filter', async () => {
    const acme = await jetstreamManager(await server.connect('acme'), { checkAPI: false })
    const attempts: Array<[Parameters<JetStreamManager['consumers']['add']>[1], string]> = [
      [{ name: 'acme_tail', filter_subject: acmeFilter }, `$JS.API.CONSUMER.CREATE.EVENTPLANE.acme_tail.${acmeFilter}`],
      [
        { name: 'acme_tail', filter_subject: globexFilter },
        `$JS.API.CONSUMER.CREATE.EVENTPLANE.acme_tail.${globexFilter}`,
      ],
      [
        { name: 'globex_proj', filter_subject: globexFilter },
        `$JS.API.CONSUMER.CREATE.EVENTPLANE.globex_proj.${globexFilter}`,
      ],
      [{ name: 'acme_tail' }, '$JS.API.CONSUMER.CREATE.EVENTPLANE.acme_tail'],
      // A push consumer would deliver wherever deliver_subject says: none can be made.
      [
        { name: 'acme_push', filter_subject: acmeFilter, deliver_subject: 'anywhere' },
        `$JS.API.CONSUMER.CREATE.EVENTPLANE.acme_push.${acmeFilter}`,
      ],
    ]
    for (const [config, subject] of attempts) {
      await assertPublishRefused(
        acme.consumers.add(STREAM_NAME, { ...config, ack_policy: AckPolicy.Explicit }),
        subject,
      )
    }
    const nc = await server.connect('acme')
    await assertPublishRefused(
      nc.request('$JS.API.CONSUMER.DURABLE.CREATE.EVENTPLANE.acme_tail', '{}'),
      '$JS.API.CONSUMER.DURABLE.CREATE.EVENTPLANE.acme_tail',
    )
  })

  test("the account boundary holds without user grants: a user with none in acme's account reaches only its imports", async () => {
    const open = await server.connectAccountUser('acme')
    const noResponders = async (subject: string, body = '{}') =>
      assert.rejects(
        open.request(subject, body, { timeout: 2000 }),
        (e) => e instanceof RequestError && e.isNoResponders(),
        subject,
      )
    // No JetStream API of its own and none of the log account's but the imported consumer subjects.
    await noResponders(`$JS.API.CONSUMER.CREATE.EVENTPLANE.acme_x.${acmeFilter}`)
    await noResponders('$JS.API.CONSUMER.CREATE.EVENTPLANE')
    await noResponders('$JS.API.STREAM.DELETE.EVENTPLANE')
    await noResponders('$JS.API.STREAM.INFO.EVENTPLANE')
    // The relay reads the stream's last message (where to resume); a tenant reads no message by sequence.
    await noResponders('$JS.API.STREAM.MSG.GET.EVENTPLANE', '{"seq":1}')
    await noResponders('$JS.API.DIRECT.GET.EVENTPLANE', '{"seq":1}')
    await noResponders('$JS.API.CONSUMER.INFO.EVENTPLANE.globex_tail')
    await noResponders('$JS.API.CONSUMER.MSG.NEXT.EVENTPLANE.globex_tail', '{"batch":1}')
    await noResponders(submitSubject('globex', 'x', 'y'))
    const own = await jetstream(open).consumers.get(STREAM_NAME, 'acme_proj')
    assert.equal((await own.info()).config.filter_subject, acmeFilter)
    // Publishing on a log subject stays inside its account: the stream and the log account see nothing.
    const watcher = await server.connect('operator')
    const spy = watcher.subscribe('eventplane.>')
    await watcher.flush()
    const before = (await operator.streams.info(STREAM_NAME)).state.messages
    open.publish(logSubject('fact', 'globex', 'x', 'y'), '{"forged":true}')
    await open.flush()
    await watcher.flush()
    assert.equal(spy.getReceived(), 0)
    assert.equal((await operator.streams.info(STREAM_NAME)).state.messages, before)
  })

  test("a tenant cannot read or pull from another tenant's consumer", async () => {
    const nc = await server.connect('acme')
    await assertPublishRefused(
      jetstream(nc).consumers.get(STREAM_NAME, 'globex_tail'),
      '$JS.API.CONSUMER.INFO.EVENTPLANE.globex_tail',
    )
    const next = '$JS.API.CONSUMER.MSG.NEXT.EVENTPLANE.globex_tail'
    await assertPublishRefused(nc.request(next, '{"batch":1}', { timeout: 2000 }), next)
  })

  test('a tenant cannot delete or purge the stream, nor delete a message', async () => {
    const acme = await jetstreamManager(await server.connect('acme'), { checkAPI: false })
    await assertPublishRefused(acme.streams.purge(STREAM_NAME), '$JS.API.STREAM.PURGE.EVENTPLANE')
    await assertPublishRefused(acme.streams.delete(STREAM_NAME), '$JS.API.STREAM.DELETE.EVENTPLANE')
    await assertPublishRefused(acme.streams.deleteMessage(STREAM_NAME, 1), '$JS.API.STREAM.MSG.DELETE.EVENTPLANE')
  })

  test("a tenant's listed consumer and core tail receive exactly its own messages from a mixed log the relay publishes", async () => {
    // acme_tail was provisioned by tenant add, filtered to acme's subjects.
    const nc = await server.connect('acme')
    const tail = nc.subscribe(acmeFilter)
    await nc.flush()
    const js = jetstream(relay)
    const published: string[] = []
    for (let i = 0; i < 4; i++) {
      for (const tenant of ['acme', 'globex']) {
        const subject = logSubject(i % 2 === 0 ? 'fact' : 'intent', tenant, 'orders', `o-${i}`)
        await js.publish(subject, JSON.stringify({ i }), { msgID: `${tenant}-${i}` })
        published.push(subject)
      }
    }
    const acmeSubjects = published.filter((s) => s.split('.')[2] === 'acme')
    const consumer = await jetstream(nc).consumers.get(STREAM_NAME, 'acme_tail')
    const pulled: string[] = []
    for await (const m of await consumer.fetch({ max_messages: 20, expires: 1000 })) {
      pulled.push(m.subject)
      m.ack()
    }
    assert.deepEqual(pulled, acmeSubjects)
    const tailed: string[] = []
    for await (const m of tail) {
      tailed.push(m.subject)
      if (tailed.length === acmeSubjects.length) break
    }
    await nc.flush()
    assert.deepEqual(tailed, acmeSubjects)
    assert.equal(tail.getPending(), 0)
    assert.equal((await consumer.info()).num_ack_pending, 0)
  })

  test("the gateway serves eventplane-api.submit.> and its replies reach a tenant through its account's import", async () => {
    const gateway = await server.connect('gateway')
    const served = gateway.subscribe('eventplane-api.submit.>', {
      queue: 'gateway',
      callback: (_err, msg) => {
        msg.respond(JSON.stringify({ subject: msg.subject, reply: msg.reply }))
      },
    })
    await gateway.flush()
    const acme = await server.connect('acme')
    const subject = submitSubject('acme', 'orders', 'o-1')
    const answer = (await acme.request(subject, '{}', { timeout: 2000 })).json<{ subject: string; reply: string }>()
    assert.equal(answer.subject, subject)
    // The tenant's own reply subject never reaches the log account: the server maps it to _R_.
    assert.match(answer.reply, /^_R_\./)
    served.unsubscribe()
  })

  test('the gateway publishes nothing but replies to requests it received', async () => {
    const gateway = await server.connect('gateway')
    const refused = watchViolations(gateway)
    gateway.publish(logSubject('fact', 'acme', 'x', 'y'), '{}')
    gateway.publish('_INBOX_acme.unsolicited', '{}')
    await gateway.flush()
    await refused(logSubject('fact', 'acme', 'x', 'y'))
    await refused('_INBOX_acme.unsolicited')
  })

  test('the gateway answers each request it received once: a second reply to the same request is refused', async () => {
    // A request from inside the log account, where no import's response type bounds the replies.
    const gateway = await server.connect('gateway')
    const refused = watchViolations(gateway)
    const served = gateway.subscribe('eventplane-api.submit.acme.replies.once', {
      callback: (_err, msg) => {
        msg.respond('first')
        msg.respond('second')
      },
    })
    await gateway.flush()
    const requester = await server.connect('operator')
    const inbox = requester.subscribe('_INBOX.reply-once')
    await requester.flush()
    requester.publish('eventplane-api.submit.acme.replies.once', '{}', { reply: '_INBOX.reply-once' })
    await requester.flush()
    assert.equal((await refused('_INBOX.reply-once')).operation, 'publish')
    // The gateway's replies were handled before the server's answer to its ping; ours comes after them.
    await gateway.flush()
    await requester.flush()
    assert.equal(inbox.getReceived(), 1)
    served.unsubscribe()
  })

  test('a controller consumes across tenants but cannot publish log subjects or delete the stream', async () => {
    const nc = await server.connect('controller')
    const jsm = await jetstreamManager(nc)
    await jsm.consumers.add(STREAM_NAME, {
      durable_name: 'orders_ctl',
      filter_subject: logFilter({ kind: 'intent' }),
      ack_policy: AckPolicy.Explicit,
    })
    const consumer = await jetstream(nc).consumers.get(STREAM_NAME, 'orders_ctl')
    const first = await consumer.next({ expires: 1000 })
    assert.equal(first?.subject.split('.')[1], 'intent')
    first?.ack()
    const subject = logSubject('fact', 'acme', 'orders', 'o-1')
    await assertPublishRefused(jetstream(nc).publish(subject, '{}'), subject)
    await assertPublishRefused(jsm.streams.delete(STREAM_NAME), '$JS.API.STREAM.DELETE.EVENTPLANE')
  })

  test("without user grants, acme's account receives only acme's live log: another tenant's subjects and the whole log bring nothing else", async () => {
    const open = await server.connectAccountUser('acme')
    const other = open.subscribe(globexFilter)
    const wide = open.subscribe('eventplane.>')
    await open.flush()
    const js = jetstream(relay)
    await js.publish(logSubject('fact', 'globex', 'orders', 'live-g'), '{}', { msgID: 'live-globex' })
    const acmeSubject = logSubject('fact', 'acme', 'orders', 'live-a')
    await js.publish(acmeSubject, '{}', { msgID: 'live-acme' })
    // Published after globex's: once acme's has arrived, globex's would have arrived before it.
    const seen: string[] = []
    const arrived = (async () => {
      for await (const m of wide) {
        seen.push(m.subject)
        if (m.subject === acmeSubject) return
      }
    })()
    await Promise.race([
      arrived,
      sleep(10_000, undefined, { ref: false }).then(() => assert.fail('acme did not get its own message')),
    ])
    assert.deepEqual(seen, [acmeSubject], 'the whole log brings acme only its own subject')
    assert.equal(other.getReceived(), 0, "globex's subjects bring acme nothing")
    await open.close()
  })

  test('the relay publishes the log but cannot delete or purge it', async () => {
    const jsm = await jetstreamManager(relay)
    await assertPublishRefused(jsm.streams.purge(STREAM_NAME), '$JS.API.STREAM.PURGE.EVENTPLANE')
    await assertPublishRefused(jsm.streams.delete(STREAM_NAME), '$JS.API.STREAM.DELETE.EVENTPLANE')
  })

  test('only the operator can delete the stream', async () => {
    assert.equal(await operator.streams.delete(STREAM_NAME), true)
    await assert.rejects(operator.streams.info(STREAM_NAME), (e) => e instanceof JetStreamApiError && e.code === 10059)
  })
})
