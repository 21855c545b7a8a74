import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { ROLES } from '@eventplane/store-pg'
import type { NatsConnection } from '@nats-io/transport-node'
import { Relay } from '../src/relay.ts'
import { type RefusedReconnectProxy, holdRefusedReconnect } from '../src/testing/refused-reconnect.ts'
import { type BusEnv, createBusEnv, within } from './fixtures.ts'

/**
 * A relay started while the server refuses its connection's reconnect (its user revoked). Its start makes
 * JetStream requests, no flush: nats.js fails a request the closed connection leaves pending (and times one out
 * in a stall), and the relay, seeing the connection closed for good, ends with `bus.unavailable` instead of
 * retrying for ever (`evtctl relay` and `evtctl up` then exit 4 naming why). The proxy holds the last reconnect
 * so that the start begins while it dials, and lets it through only then, to be refused.
 */
describe('relay started while the server refuses its reconnect', () => {
  let env: BusEnv
  let proxy: RefusedReconnectProxy

  before(async () => {
    env = await createBusEnv('ep_start_revoked_relay', ['acme'])
    proxy = await holdRefusedReconnect(env.server.port)
  })
  after(async () => {
    await proxy?.close()
    await env?.cleanup()
  })

  test('its start settles: closed rejects with bus.unavailable once the connection closed, the lease released', async () => {
    const nc: NatsConnection = await env.server.connect('relay', {
      servers: proxy.url,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 50,
    })
    let relay: Relay | undefined
    try {
      await env.server.revokeServiceUsers(['relay'])
      const { release } = await within(proxy.held, 10_000, 'the reconnect after the refused one (held by the proxy)')
      relay = new Relay({ sql: env.db.connect(ROLES.relay, 3), nc, name: 'revoked', maxBackoffMs: 100 })
      relay.start()
      release()
      const closed = await within(nc.closed(), 10_000, 'the connection to close at its refused reconnect')
      assert.match(String(closed), /Authorization Violation/)
      // Bounded: a relay that retries on the closed connection is still starting after 5 s, and fails here then.
      const outcome = await within(relay.closed, 5_000, 'the relay to end (it retries on a closed connection)').then(
        () => 'stopped',
        (e: unknown) => e,
      )
      assert.ok(isEventplaneError(outcome, 'bus.unavailable'), `the relay ends with bus.unavailable: ${outcome}`)
      assert.equal(relay.state, 'stopped')
      const [{ n }] = (await env.db.admin`
        select count(*)::int as n from eventplane.relay_leases l
        join pg_stat_activity a on a.pid = l.holder_pid where l.name = 'revoked'`) as [{ n: number }]
      assert.equal(n, 0, 'no live session holds its lease')
    } finally {
      // Also when it fails: a relay left retrying and a connection left reconnecting keep the file alive for ever.
      await within(relay?.stop() ?? Promise.resolve(), 10_000, 'the relay to stop')
      await within(nc.close(), 10_000, 'the connection to close')
    }
  })
})
