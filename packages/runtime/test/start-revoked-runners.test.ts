import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { ensureStream } from '@eventplane/bus-nats'
import { type RefusedReconnectProxy, holdRefusedReconnect } from '@eventplane/bus-nats/testing'
import { isEventplaneError } from '@eventplane/core'
import { jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import { type BusEnv, createBusEnv } from '@eventplane/bus-nats/testing'
import { ControllerRunner } from '../src/controller/runner.ts'
import { controllerLiveSource, projectionLiveSource } from '../src/jetstream-source.ts'
import type { LiveSource } from '../src/live-source.ts'
import { ProjectionRunner } from '../src/projection/runner.ts'
import { PROJECTOR_ROLE } from '../src/roles.ts'
import { streamCounter } from './fixtures.ts'
import { within } from './helpers.ts'

/**
 * `start()`, once the connection closed, or `'still starting'` 5 s after it: a start that goes on retrying on a
 * closed connection would keep `evtctl run`, `subscribe <name>` or `up` starting for ever, saying nothing.
 */
async function outcome(starting: Promise<unknown>, nc: NatsConnection): Promise<unknown> {
  assert.match(String(await nc.closed()), /Authorization Violation/)
  return Promise.race([
    starting.then(
      () => 'started',
      (e: unknown) => e,
    ),
    new Promise<string>((resolve) => setTimeout(resolve, 5_000, 'still starting').unref()),
  ])
}

/**
 * Runners started while the server refuses their connection's reconnect (their user revoked). Their
 * start makes JetStream requests (the consumer's check or create, the pull's consumer look-up), no flush or
 * drain: nats.js fails a request the closed connection leaves pending, and the runner, seeing its live source
 * closed for good, ends with `bus.unavailable` (evtctl then names the connection and why the server closed it).
 * The proxy holds the last reconnect so that the step begins while it dials, and lets it through only then.
 */
describe('runners started while the server refuses their reconnect', () => {
  const cleanups: (() => Promise<unknown>)[] = []

  /**
   * A server of its own (the revocation lasts), and a connection as the controller user (`evtctl run`'s runners
   * share it) through a proxy; `revoke()` revokes the user and resolves at the held last reconnect.
   */
  async function heldRefused(
    prefix: string,
  ): Promise<{ env: BusEnv; nc: NatsConnection; revoke(): Promise<() => void> }> {
    const env = await createBusEnv(prefix, ['acme'])
    cleanups.push(() => env.cleanup())
    const operator = await env.server.connect('operator')
    await ensureStream(await jetstreamManager(operator))
    await operator.close()
    const proxy: RefusedReconnectProxy = await holdRefusedReconnect(env.server.port)
    cleanups.push(() => proxy.close())
    const nc = await env.server.connect('controller', {
      servers: proxy.url,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 50,
    })
    cleanups.push(() => nc.close())
    return {
      env,
      nc,
      async revoke() {
        await env.server.revokeServiceUsers(['controller'])
        return (await proxy.held).release
      },
    }
  }

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {})
  })

  test("a projection runner's start settles with bus.unavailable when its consumer's check meets the refusal", async () => {
    const { env, nc, revoke } = await heldRefused('ep_start_revoked_proj')
    const release = await revoke()
    const runner = new ProjectionRunner({
      projection: streamCounter,
      sql: env.db.connect(PROJECTOR_ROLE, 2),
      live: projectionLiveSource(nc, streamCounter, { consumer: 'revoked_proj' }),
      retryDelayMs: 20,
    })
    cleanups.push(() => runner.stop())
    const starting = runner.start()
    release()
    const e = await outcome(starting, nc)
    assert.ok(
      isEventplaneError(e, 'bus.unavailable'),
      `ended with ${String(e)} (still starting: it retries on a closed connection)`,
    )
  })

  test("a controller runner's start settles with bus.unavailable when its subscription's open meets the refusal", async () => {
    const { env, nc, revoke } = await heldRefused('ep_start_revoked_ctl')
    const controller = { name: 'revoked', categories: ['deployment'], async reconcile() {} }
    const source = controllerLiveSource(nc, controller)
    let revoked: Promise<() => void> | undefined
    // The consumer is made on a healthy connection; the user is revoked before the subscription opens.
    const live: LiveSource = {
      ...source,
      async prepare() {
        await source.prepare()
        revoked ??= revoke()
        await revoked
      },
    }
    const runner = new ControllerRunner({
      controller,
      store: env.facts,
      live,
      retryDelayMs: 20,
      maxRetryDelayMs: 50,
    })
    cleanups.push(() => runner.stop())
    const starting = runner.start()
    starting.catch(() => {})
    await within(
      (async () => {
        while (revoked === undefined) await new Promise((resolve) => setImmediate(resolve))
        ;(await revoked)()
      })(),
      20_000,
      "the consumer's check, then the reconnect held",
    )
    const e = await outcome(starting, nc)
    assert.ok(
      isEventplaneError(e, 'bus.unavailable'),
      `ended with ${String(e)} (still starting: it retries on a closed connection)`,
    )
  })
})
