import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startGateway } from '../src/gateway.ts'
import { type RefusedReconnectProxy, holdRefusedReconnect } from '../src/testing/refused-reconnect.ts'
import { type BusEnv, createBusEnv } from './fixtures.ts'

/**
 * The gateway's stop drains its subscription. Its connection closed by the server meanwhile (its user revoked:
 * the reconnect refused) must not hold the stop, nor `closed` (which stops too), forever: nats.js answers no
 * drain's PING once closed, and `evtctl up` failing for another part would wait on it. The proxy holds the last
 * reconnect, so that the stop starts while it dials, and lets it through only then, to be refused.
 */
describe('gateway stop while the server closes its connection', () => {
  let env: BusEnv
  let proxy: RefusedReconnectProxy

  before(async () => {
    env = await createBusEnv('ep_gateway_stop_revoked', ['acme'])
    proxy = await holdRefusedReconnect(env.server.port)
  })
  after(async () => {
    await proxy?.close()
    await env?.cleanup()
  })

  test('stop and closed settle once the connection is closed', async () => {
    const nc = await env.server.connect('gateway', {
      servers: proxy.url,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 50,
    })
    const gateway = await startGateway({ nc, store: env.intents })
    await env.server.revokeServiceUsers(['gateway'])
    const { release } = await proxy.held
    // The drain's PING waits on the held dial; released, the server refuses it and the client closes.
    const stopping = gateway.stop()
    release()
    assert.match(String(await nc.closed()), /Authorization Violation/)
    const done = await Promise.race([
      Promise.all([stopping, gateway.closed]).then(() => 'stopped'),
      new Promise<string>((resolve) => setTimeout(resolve, 5_000, 'still draining').unref()),
    ])
    assert.equal(done, 'stopped', 'the gateway waits on a drain nats.js never answers')
  })
})
