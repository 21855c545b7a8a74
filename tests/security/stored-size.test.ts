/**
 * Attack review 2026-12-02, second round: the relay publishes the log in order, so an event it can never publish
 * stops the log for every tenant. PostgreSQL's jsonb renders a number as its full decimal: `1e+308`, six bytes
 * of JSON, comes back as 309 digits, `5e-324` as 326 characters. Before this test the data limit counted the
 * JSON a client sent: acme's 63 KB of such numbers (within the 64 KiB data limit, the gateway's request limit and
 * its account's 128 KiB message limit) was stored as 2.6 MB of text, which the relay read, could not publish
 * (the stream's 256 KiB `max_msg_size`, nats' 1 MiB max_payload), and retried for ever: globex's events behind it
 * never reached the bus. Real PostgreSQL and a nats-server in the account model; acme uses its own tenant creds.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { DEFAULT_MAX_DATA_BYTES, draftIntent, isEventplaneError } from '@eventplane/core'
import { type Gateway, Relay, startGateway, submitIntent, submitSubject } from '@eventplane/bus-nats'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import type { NatsConnection } from '@nats-io/transport-node'
import { type BusEnv, createBusEnv, eventually, streamMessages } from '../../packages/bus-nats/test/fixtures.ts'

const encoder = new TextEncoder()

describe('an event the relay cannot publish is never stored', () => {
  let env: BusEnv
  let gateway: Gateway
  let relay: Relay
  let acme: NatsConnection
  let globex: NatsConnection
  let operator: NatsConnection

  before(async () => {
    env = await createBusEnv('ep_sec_stored_size')
    gateway = await startGateway({
      nc: await env.natsAs('gateway'),
      store: new PgEventStore(env.db.connect(ROLES.intentWriter, 2)),
    })
    relay = new Relay({ sql: env.db.connect(ROLES.relay, 3), nc: await env.natsAs('relay'), pollIntervalMs: 100 })
    relay.start()
    acme = await env.server.connect('acme')
    globex = await env.server.connect('globex')
    operator = await env.natsAs('operator')
  })
  after(async () => {
    await gateway?.stop()
    await relay?.stop()
    await env?.cleanup()
  })

  test('data whose stored form exceeds the data limit is refused at the gateway, and another tenant’s event behind it is published', async () => {
    for (const number of [1e308, 5e-324]) {
      // Under the limit even with jsonb's ", " between items: only the numbers' full decimals put it over.
      const n = Math.floor((DEFAULT_MAX_DATA_BYTES - 16) / (JSON.stringify(number).length + 2))
      // By hand, as a client that skips draftIntent's checks (which refuse it too) sends it.
      const data = { n: Array<number>(n).fill(number) }
      const draft = { ...draftIntent({ tenant: 'acme', category: 'note', id: 'n1' }, 'noted', {}), data }
      const body = encoder.encode(JSON.stringify({ event: draft }))
      assert.ok(body.byteLength < 128 * 1024, 'within the account’s message limit')
      const reply = (await acme.request(submitSubject('acme', 'note', 'n1'), body, { timeout: 10_000 })).json<{
        error?: { code: string }
      }>()
      const behind = draftIntent({ tenant: 'globex', category: 'job', id: 'g1' }, 'run', { number })
      await submitIntent(globex, behind)
      await eventually(
        async () => (await streamMessages(operator)).some((m) => m.event.event_id === behind.event_id),
        'globex’s event on the bus',
        20_000,
      )
      assert.equal(reply.error?.code, 'core.payload_too_large', `refused: ${JSON.stringify(reply).slice(0, 200)}`)
      const [row] = await env.db
        .admin`select count(*)::int as n from eventplane.events where event_id = ${draft.event_id}`
      assert.equal(row!.n, 0, 'nothing written')
      assert.throws(
        () => draftIntent({ tenant: 'acme', category: 'note', id: 'n1' }, 'noted', data),
        (e: unknown) => isEventplaneError(e, 'core.payload_too_large'),
      )
    }
  })
})
