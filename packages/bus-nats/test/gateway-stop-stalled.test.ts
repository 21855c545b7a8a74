import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startGateway } from '../src/gateway.ts'
import { SERVER_WAIT_MS } from '../src/server-wait.ts'
import { type StalledProxy, startStalledProxy } from '../src/testing/stalled-proxy.ts'
import { type BusEnv, createBusEnv } from './fixtures.ts'

/**
 * The gateway's stop drains its subscription, and a drain waits for the server's answer to its PING. A server
 * (or path) that stopped answering gives none until the client's ping timeout, minutes: the stop, and with it
 * `evtctl gateway` or `evtctl up` on SIGTERM, must go on without it after its deadline.
 */
describe('gateway stop while the server does not answer', () => {
  let env: BusEnv
  let proxy: StalledProxy

  before(async () => {
    env = await createBusEnv('ep_gateway_stop_stalled', ['acme'])
    proxy = await startStalledProxy(env.server.port)
  })
  after(async () => {
    await proxy?.close()
    await env?.cleanup()
  })

  test('stop settles after the deadline, the subscription ended, the connection still open', async () => {
    const nc = await env.server.connect('gateway', { servers: proxy.url, maxReconnectAttempts: -1 })
    const warnings: string[] = []
    const logger = {
      debug() {},
      info() {},
      warn: (_fields: object, msg: string) => void warnings.push(msg),
      error() {},
    }
    const gateway = await startGateway({ nc, store: env.intents, logger })
    proxy.stall()
    const started = performance.now()
    const done = await Promise.race([
      gateway.stop().then(() => 'stopped'),
      new Promise<string>((resolve) => setTimeout(resolve, SERVER_WAIT_MS + 5_000, 'still draining').unref()),
    ])
    assert.equal(done, 'stopped', 'the gateway waits on a drain the server never answers')
    assert.ok(performance.now() - started >= SERVER_WAIT_MS - 50, 'it gave the server its deadline')
    // Undrained, the subscription is still ended: a reconnect would otherwise subscribe it again.
    const ended = await Promise.race([
      gateway.closed.then(() => 'ended'),
      new Promise<string>((resolve) => setTimeout(resolve, 2_000, 'still subscribed').unref()),
    ])
    assert.equal(ended, 'ended')
    assert.deepEqual(warnings, [
      'the gateway subscription did not drain: the server did not answer; stopped without it',
    ])
    assert.equal(nc.isClosed(), false)
    await nc.close()
  })
})
