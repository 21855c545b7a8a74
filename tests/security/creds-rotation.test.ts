/**
 * `evtctl creds rotate` against a real nats-server in the account model: a service user's old key is refused from
 * then on and its new creds work, the other service users are untouched, and every revocation is kept: by a later
 * rotation of another user, by a server restart, and by a re-run of `nats-setup` (a server started afresh from its
 * config). A staged rotation keeps the old key until `creds revoke-old`; a name that is not an auth dir user
 * writes nothing (`system` is rotated in `system-creds-rotation.test.ts`).
 */
import assert from 'node:assert/strict'
import { readFileSync, statSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { credsUserKey, serviceCredsFile } from '@eventplane/bus-nats/nats-config'
import {
  type TestNatsServer,
  connectsWith,
  dirSnapshot,
  refusedWith,
  startNatsServer,
} from '../../packages/bus-nats/src/testing/index.ts'
import { within } from '../../packages/bus-nats/test/fixtures.ts'
import { failureLine, killAll, runCli } from '../../packages/evtctl/test/helpers.ts'
import { checkSetupRerun } from './support/setup-rerun.ts'

const keyOf = credsUserKey

describe('evtctl creds rotate: service users', () => {
  let server: TestNatsServer
  let cli: Record<string, string>
  /** Creds revoked so far, by what they were. */
  const revoked: Array<[string, Uint8Array]> = []
  const creds = (user: string) => readFileSync(serviceCredsFile(server.authDir!, user as 'relay'))

  before(async () => {
    server = await startNatsServer()
    cli = { EVENTPLANE_NATS_URL: server.url, EVENTPLANE_NATS_AUTH_DIR: server.authDir! }
  })
  after(async () => {
    killAll()
    await server?.stop()
  })

  test("rotating relay: its old creds are refused, its new ones work, the other users' connections are untouched", async () => {
    const old = creds('relay')
    const gateway = await server.connect('gateway')
    const statuses: string[] = []
    void (async () => {
      for await (const s of gateway.status()) if (s.type !== 'ping') statuses.push(s.type)
    })()

    const r = await runCli(['creds', 'rotate', 'relay', '--json'], { env: cli })
    assert.equal(r.code, 0, r.stderr)
    const out = JSON.parse(r.stdout) as { user: string; creds_file: string; key: string; revoked: string[] }
    assert.equal(out.user, 'relay')
    assert.deepEqual(out.revoked, [await keyOf(old)])
    assert.equal(out.key, await keyOf(creds('relay')))
    assert.equal(statSync(out.creds_file).mode & 0o777, 0o600, 'the creds file is private')
    const secrets = readFileSync(out.creds_file, 'utf8')
      .split('\n')
      .filter((l) => /^(eyJ|SU)/.test(l))
    assert.equal(secrets.length, 2)
    assert.ok(!secrets.some((s) => r.stdout.includes(s) || r.stderr.includes(s)), 'creds are never printed')

    await refusedWith(server.url, old, 'the old relay key')
    await connectsWith(server.url, creds('relay'))
    await within(gateway.flush(), 5000, 'the gateway connection')
    assert.deepEqual(statuses, [], 'the gateway connection saw nothing')
    for (const user of ['gateway', 'controller', 'operator', 'system']) await connectsWith(server.url, creds(user))
    revoked.push(['relay (first)', old])
  })

  test("rotating gateway after relay keeps relay's revocation (the log account JWT is merged, not rewritten)", async () => {
    const old = creds('gateway')
    const r = await runCli(['creds', 'rotate', 'gateway'], { env: cli })
    assert.equal(r.code, 0, r.stderr)
    revoked.push(['gateway (first)', old])
    for (const [what, c] of revoked) await refusedWith(server.url, c, what)
    await connectsWith(server.url, creds('gateway'))
    await connectsWith(server.url, creds('relay'))
  })

  test('a nats-server restart keeps every revocation, with its old config or one re-generated from the auth dir', async () => {
    await server.restart()
    for (const [what, c] of revoked) await refusedWith(server.url, c, what)
    // What an upgrade does: nats-setup again (the log account JWT of the auth dir preloaded), then a restart.
    await server.restart({ reconfigure: true })
    for (const [what, c] of revoked) await refusedWith(server.url, c, what)
    for (const user of ['relay', 'gateway', 'controller', 'operator']) await connectsWith(server.url, creds(user))
  })

  test('a re-run of nats-setup keeps every revocation: a server started afresh from its config refuses them', async () => {
    await checkSetupRerun(server.authDir!, 'EVENTPLANE', revoked, (url) => connectsWith(url, creds('relay')))
  })

  test('--keep-old: the old key works until creds revoke-old, then it is refused', async () => {
    const old = creds('controller')
    const r = await runCli(['creds', 'rotate', 'controller', '--keep-old', '--json'], { env: cli })
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual((JSON.parse(r.stdout) as { staged: string[] }).staged, [await keyOf(old)])
    await connectsWith(server.url, old)
    await connectsWith(server.url, creds('controller'))
    const list = await runCli(['creds', 'list', '--json'], { env: cli })
    const controller = list.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { user: string; staged: string[] })
      .find((u) => u.user === 'controller')
    assert.deepEqual(controller?.staged, [await keyOf(old)])

    const done = await runCli(['creds', 'revoke-old', 'controller', '--json'], { env: cli })
    assert.equal(done.code, 0, done.stderr)
    assert.deepEqual((JSON.parse(done.stdout) as { revoked: string[] }).revoked, [await keyOf(old)])
    revoked.push(['controller (staged)', old])
    for (const [what, c] of revoked) await refusedWith(server.url, c, what)
    await connectsWith(server.url, creds('controller'))
  })

  test('a name that is not an auth dir user: exit 1, bus.unknown_user, nothing written', async () => {
    const before = dirSnapshot(server.authDir!)
    for (const name of ['nobody', 'SYS', 'acme']) {
      const r = await runCli(['creds', 'rotate', name], { env: cli })
      assert.equal(r.code, 1, `${name}: ${r.stderr}`)
      const failure = failureLine(r)
      assert.equal(failure.code, 'bus.unknown_user', name)
      // A tenant's name is the likely slip: the line names the command for a tenant's user.
      assert.match(failure.message, /; a tenant's user: evtctl tenant rotate <tenant>\)$/, name)
    }
    const staged = await runCli(['creds', 'revoke-old', 'nobody'], { env: cli })
    assert.equal(staged.code, 1, staged.stderr)
    assert.equal(failureLine(staged).code, 'bus.unknown_user')
    assert.deepEqual(dirSnapshot(server.authDir!), before, 'the auth dir is as it was')
  })
})
