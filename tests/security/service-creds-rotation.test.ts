/**
 * A running `evtctl relay` and `evtctl gateway` whose creds are rotated on their host (`evtctl creds rotate`
 * writing the new creds file they were started with) are disconnected by the revocation of their old keys and
 * reconnect with the new ones: they do not exit, events appended right after the rotation are all published, and
 * an intent submitted after it is recorded, published and delivered.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { serviceCredsFile } from '@eventplane/bus-nats/nats-config'
import { connect, credsAuthenticator } from '@nats-io/transport-node'
import { type BusEnv, createBusEnv } from '../../packages/bus-nats/test/fixtures.ts'
import { killAll, runCli } from '../../packages/evtctl/test/helpers.ts'
import { servicesThroughRotation } from './support/delivered-submits.ts'

describe('services pick up rotated creds without a restart', () => {
  let env: BusEnv
  before(async () => {
    env = await createBusEnv('ep_creds_rotation_live', ['acme'])
  })
  after(async () => {
    killAll()
    await env?.cleanup()
  })

  test('evtctl relay and evtctl gateway reconnect with their rotated creds: no exit, the next intent is delivered', async (t) => {
    await servicesThroughRotation(env, t, 'rotation', async () => {
      const cli = { EVENTPLANE_NATS_URL: env.server.url, EVENTPLANE_NATS_AUTH_DIR: env.server.authDir! }
      const old = new Map<string, Uint8Array>()
      for (const user of ['relay', 'gateway'] as const) {
        old.set(user, readFileSync(serviceCredsFile(env.server.authDir!, user)))
        const r = await runCli(['creds', 'rotate', user], { env: cli })
        assert.equal(r.code, 0, r.stderr)
      }
      for (const [user, creds] of old)
        await assert.rejects(
          connect({ servers: env.server.url, authenticator: credsAuthenticator(creds), maxReconnectAttempts: 0 }),
          /Authorization Violation/,
          `${user}'s old key is refused`,
        )
    })
  })
})
