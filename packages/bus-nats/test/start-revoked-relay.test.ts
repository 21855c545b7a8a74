import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { ROLES } from '@eventplane/store-pg'
import type { NatsConnection } from '@nats-io/transport-node'
import { Relay } from '../src/relay.ts'
import { type RefusedReconnectProxy, holdRefusedReconnect } from '../src/testing/refused-reconnect.ts'
import { type BusEnv, createBusEnv } from './fixtures.ts'

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
    await env.server.revokeServiceUsers(['relay'])
    const { release } = await proxy.held
    const relay = new Relay({ sql: env.db.connect(ROLES.relay, 3), nc, name: 'revoked', maxBackoffMs: 100 })
    relay.start()
    release()
    assert.match(String(await nc.closed()), /Authorization Violation/)
    const outcome = await Promise.race([
      relay.closed.then(
        () => 'stopped',
        (e: unknown) => e,
      ),
      new Promise<string>((resolve) => setTimeout(resolve, 5_000, 'still starting').unref()),
    ])
    assert.ok(isEventplaneError(outcome, 'bus.unavailable'), `the relay retries on a closed connection: ${outcome}`)
    assert.equal(relay.state, 'stopped')
    const [{ n }] = (await env.db.admin`
      select count(*)::int as n from eventplane.relay_leases l
      join pg_stat_activity a on a.pid = l.holder_pid where l.name = 'revoked'`) as [{ n: number }]
    assert.equal(n, 0, 'no live session holds its lease')
    await relay.stop()
  })
})
