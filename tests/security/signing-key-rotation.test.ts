/**
 * `evtctl keys rotate log` while `evtctl relay` and `evtctl gateway` run on the auth dir's creds files: the log
 * account's signing key is replaced live, every service creds file re-issued for the same user key, the creds the
 * old key signed refused, and the services reconnect with the re-issued files: no exit, events appended right after
 * the rotation are all published, an intent submitted after it is recorded, published and delivered.
 * `evtctl keys rotate operator`: its first step stages the new key, its second is refused before the restart
 * the first asks for.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { credsUserKey, serviceCredsFile } from '@eventplane/bus-nats/nats-config'
import { connect, credsAuthenticator } from '@nats-io/transport-node'
import { PRINTED_SEED } from '@eventplane/bus-nats/testing'
import { type BusEnv, createBusEnv } from '../../packages/bus-nats/test/fixtures.ts'
import { killAll, runCli } from '../../packages/evtctl/test/helpers.ts'
import { servicesThroughRotation } from './support/delivered-submits.ts'

describe('evtctl keys rotate', () => {
  let env: BusEnv
  let cli: Record<string, string>
  before(async () => {
    env = await createBusEnv('ep_signing_rotation', ['acme'])
    cli = { EVENTPLANE_NATS_URL: env.server.url, EVENTPLANE_NATS_AUTH_DIR: env.server.authDir! }
  })
  after(async () => {
    killAll()
    await env?.cleanup()
  })

  test('keys rotate log: evtctl relay and gateway reconnect with their re-issued creds; the old ones are refused', async (t) => {
    await servicesThroughRotation(env, t, 'signing-rotation', async () => {
      const users = ['relay', 'gateway'] as const
      const old = new Map(users.map((u) => [u, readFileSync(serviceCredsFile(env.server.authDir!, u))]))
      const r = await runCli(['keys', 'rotate', 'log', '--json'], { env: cli })
      assert.equal(r.code, 0, r.stderr)
      const out = JSON.parse(r.stdout) as { account: string; key: string; removed: string; reissued: string[] }
      assert.equal(out.account, 'EVENTPLANE')
      assert.equal(out.reissued.length, 4)
      assert.doesNotMatch(r.stdout, PRINTED_SEED, 'no seed printed')
      assert.doesNotMatch(r.stdout, /eyJ/, 'no JWT printed')
      for (const [user, creds] of old) {
        const now = readFileSync(serviceCredsFile(env.server.authDir!, user))
        assert.equal(await credsUserKey(now), await credsUserKey(creds), `${user}: the same user key`)
        await assert.rejects(
          connect({ servers: env.server.url, authenticator: credsAuthenticator(creds), maxReconnectAttempts: 0 }),
          /Authorization Violation/,
          `${user}'s creds the old signing key issued are refused`,
        )
      }
    })
  })

  test('keys rotate operator: step 1 stages the new key and says to restart; step 2 before the restart fails, naming it', async () => {
    const staged = await runCli(['keys', 'rotate', 'operator', '--json'], { env: cli })
    assert.equal(staged.code, 0, staged.stderr)
    const out = JSON.parse(staged.stdout) as { step: string; key: string; old: string; next: string }
    assert.equal(out.step, 'staged')
    assert.notEqual(out.key, out.old)
    // evtctl writes no server config: the step names nats-setup, run again with the same paths, before the restart.
    assert.match(out.next, /^run nats-setup again \(same --auth-dir, --store-dir and --out\) and restart nats-server /)
    const early = await runCli(['keys', 'rotate', 'operator'], { env: cli })
    assert.notEqual(early.code, 0)
    assert.match(early.stderr, /does not trust the new operator signing key yet: run nats-setup again and restart it/)
    // The services' creds still connect: nothing the server uses changed.
    for (const user of ['relay', 'gateway'] as const)
      await (
        await connect({
          servers: env.server.url,
          authenticator: credsAuthenticator(readFileSync(serviceCredsFile(env.server.authDir!, user))),
          maxReconnectAttempts: 0,
        })
      ).close()
  })

  test('keys rotate takes log, system, operator or tenant <tenant>; anything else is a usage error (exit 1)', async () => {
    for (const args of [['tenant'], ['log', 'acme'], ['operators']]) {
      const r = await runCli(['keys', 'rotate', ...args], { env: cli })
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, /log, system, operator or tenant <tenant>/)
    }
    const unknown = await runCli(['keys', 'rotate', 'tenant', 'nobody'], { env: cli })
    assert.notEqual(unknown.code, 0)
    assert.match(unknown.stderr, /not active/)
  })
})
