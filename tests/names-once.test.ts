/**
 * Names are parsed once per process boundary (issue 12): one `evtctl publish`
 * parses its stream's tenant, category and id and its type once in evtctl
 * (the stream argument and the draft), and once more in the gateway (the
 * request subject and the type); a `ValidStreamRef` or a validated envelope
 * carries them on inside each process. Counted with core's name-parse
 * counter, in one process: the gateway runs here too, so its share is
 * measured first on its own, with a request built before counting.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventFactory, draftIntent, parseStream } from '@eventplane/core'
import { nameParseCount } from '@eventplane/core/testing'
import { type Gateway, startGateway, submitSubject } from '@eventplane/bus-nats'
import { run } from '@eventplane/evtctl'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import type { NatsConnection } from '@nats-io/transport-node'
import { type BusEnv, createBusEnv } from '../packages/bus-nats/test/fixtures.ts'

/** tenant, category, stream id and type. */
const NAMES = 4

describe('names are parsed once per process boundary', () => {
  let env: BusEnv
  let gateway: Gateway
  let acme: NatsConnection

  before(async () => {
    env = await createBusEnv('ep_names_once', ['acme'])
    gateway = await startGateway({ nc: await env.natsAs('gateway'), store: env.intents })
    acme = await env.server.connect('acme')
  })
  after(async () => {
    await gateway?.stop()
    await env?.cleanup()
  })

  test('the gateway parses a request’s four names once: the subject’s three and the type', async () => {
    const subject = submitSubject('acme', 'deployment', 'web-1')
    const body = JSON.stringify({ event: draftIntent(parseStream('acme/deployment/web-1'), 'create', { n: 1 }) })
    const before = nameParseCount()
    const reply = (await acme.request(subject, body, { timeout: 10_000 })).json<{ ok?: unknown }>()
    assert.ok(reply.ok, JSON.stringify(reply))
    assert.equal(nameParseCount() - before, NAMES)
  })

  test('evtctl publish parses them once more (its stream argument and type), nowhere else on the way', async () => {
    let out = ''
    let err = ''
    const io = {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
      env: { EVENTPLANE_NATS_URL: env.server.url, EVENTPLANE_NATS_CREDS: env.server.credentials.acme!.creds },
    }
    const before = nameParseCount()
    const code = await run(['publish', 'acme/deployment/web-2', 'create', '--data', '{"n":2}', '--json'], io)
    assert.equal(code, 0, err)
    assert.equal(nameParseCount() - before, NAMES + NAMES, 'evtctl 4 + the gateway 4')
    const [stored] = await new PgEventStore(env.db.connect(ROLES.reader, 1)).readStreamToArray(
      parseStream('acme/deployment/web-2'),
    )
    assert.equal(stored?.event_id, (JSON.parse(out) as { event_id: string }).event_id)
  })

  test('the store trusts a parsed stream reference and a validated envelope’s stream: an append parses nothing', async () => {
    const ref = parseStream('acme/deployment/web-3')
    const factory = EventFactory.forTenant('acme', { causedBy: 'user:test' })
    const first = factory.intent(ref, 'create', { n: 3 })
    const second = factory.intent(ref, 'create', { n: 4 })
    const before = nameParseCount()
    await env.intents.append(ref, [first])
    await env.intents.append({ tenant: 'acme', category: 'deployment', id: 'web-3' }, [second])
    assert.equal(nameParseCount() - before, 0)
  })
})
