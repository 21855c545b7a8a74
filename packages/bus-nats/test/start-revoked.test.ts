import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { NatsConnection } from '@nats-io/transport-node'
import { startGateway } from '../src/gateway.ts'
import { tail } from '../src/tail.ts'
import { type RefusedReconnectProxy, holdRefusedReconnect } from '../src/testing/refused-reconnect.ts'
import { type BusEnv, createBusEnv } from './fixtures.ts'

/**
 * The gateway and `tail` flush once subscribed, to know the server has their subscription. A flush queued while
 * the connection dials the reconnect the server then refuses (its user revoked) is never answered: nats.js
 * closes for good without failing it. Starting then must not hang for ever (`evtctl gateway` or `evtctl tail`
 * sat there, saying nothing): it ends, and the closed connection says why. The proxy holds that last reconnect
 * so that the start begins while it dials, and lets it through only then, to be refused.
 */
describe('gateway and tail started while the server refuses their reconnect', () => {
  let env: BusEnv
  const proxies: RefusedReconnectProxy[] = []

  /** A connection as `user` through its own proxy, its user revoked, held at the last reconnect. */
  async function heldRefused(user: 'gateway' | 'relay'): Promise<{ nc: NatsConnection; release(): void }> {
    const proxy = await holdRefusedReconnect(env.server.port)
    proxies.push(proxy)
    const nc = await env.server.connect(user, { servers: proxy.url, maxReconnectAttempts: -1, reconnectTimeWait: 50 })
    await env.server.revokeServiceUsers([user])
    const { release } = await proxy.held
    return { nc, release }
  }

  /** `what` once `starting` settled, or `'still starting'` 5 s after the connection closed. */
  async function outcome(starting: Promise<unknown>, nc: NatsConnection): Promise<string> {
    assert.match(String(await nc.closed()), /Authorization Violation/)
    return Promise.race([
      starting.then(
        () => 'started',
        () => 'failed',
      ),
      new Promise<string>((resolve) => setTimeout(resolve, 5_000, 'still starting').unref()),
    ])
  }

  before(async () => {
    env = await createBusEnv('ep_start_revoked', ['acme'])
  })
  after(async () => {
    for (const proxy of proxies) await proxy.close()
    await env?.cleanup()
  })

  test('startGateway settles, and its gateway is closed', async () => {
    const { nc, release } = await heldRefused('gateway')
    const starting = startGateway({ nc, store: env.intents })
    release()
    assert.notEqual(await outcome(starting, nc), 'still starting', 'the gateway waits on a flush nats.js never answers')
    const gateway = await starting.catch(() => undefined)
    if (gateway) await gateway.closed
  })

  test('tail settles, and its feed is closed', async () => {
    const { nc, release } = await heldRefused('relay')
    const starting = tail(nc, {})
    release()
    assert.notEqual(await outcome(starting, nc), 'still starting', 'tail waits on a flush nats.js never answers')
    const live = await starting.catch(() => undefined)
    // Its feed ends (nats.js settles a closed subscription's end only for a reader).
    if (live) for await (const _ of live) assert.fail('an event on a closed connection')
  })
})
