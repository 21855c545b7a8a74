/**
 * `evtctl creds rotate system` against a real nats-server in the account model: the system account's user (who
 * pushes every account JWT) gets a new key, its old key is refused and its live connections closed, and the new
 * creds push claims (`tenant add`, a service rotation). The revocation is kept in the auth dir
 * (`accounts/SYS.revocations.json`, `accounts/SYS.jwt`): by a server restart, a `nats-setup` re-run and a server
 * started afresh from its config. `--keep-old` leaves the old key valid until `creds revoke-old`; a push that fails
 * leaves working creds and names the command that pushes.
 */
import assert from 'node:assert/strict'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { credsUserKey, pushAccountJwt, serviceCredsFile, tenantCredsFile } from '@eventplane/bus-nats/nats-config'
import { connect, credsAuthenticator } from '@nats-io/transport-node'
import {
  type TestNatsServer,
  connectsWith,
  refusedWith,
  startNatsServer,
} from '../../packages/bus-nats/src/testing/index.ts'
import { within } from '../../packages/bus-nats/test/fixtures.ts'
import { UNREACHABLE_NATS, failureLine, killAll, runCli } from '../../packages/evtctl/test/helpers.ts'
import { checkSetupRerun } from './support/setup-rerun.ts'

interface ListedUser {
  user: string
  key: string
  staged: string[]
  revoked: number
}

describe('evtctl creds rotate system: the system account user', () => {
  let server: TestNatsServer
  let cli: Record<string, string>
  /** System creds revoked so far, by what they were. */
  const revoked: Array<[string, Uint8Array]> = []
  const creds = (user: 'system' | 'relay' | 'controller' | 'operator') =>
    readFileSync(serviceCredsFile(server.authDir!, user))
  const listed = async (user: string): Promise<ListedUser | undefined> => {
    const r = await runCli(['creds', 'list', '--json'], { env: cli })
    assert.equal(r.code, 0, r.stderr)
    return r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as ListedUser)
      .find((u) => u.user === user)
  }
  const tenantAdd = async (tenant: string) => {
    const r = await runCli(['tenant', 'add', tenant], { env: cli })
    assert.equal(r.code, 0, `tenant add ${tenant} through the system creds: ${r.stderr}`)
    await connectsWith(server.url, readFileSync(tenantCredsFile(server.authDir!, tenant)))
  }

  before(async () => {
    server = await startNatsServer()
    cli = { EVENTPLANE_NATS_URL: server.url, EVENTPLANE_NATS_AUTH_DIR: server.authDir! }
  })
  after(async () => {
    killAll()
    await server?.stop()
  })

  test('the old system key is refused and its connection closed; the new creds push a tenant and a rotation', async () => {
    const old = creds('system')
    // Retrying every 100 ms, not the client's default 2 s: it closes at its second refused reconnect, so the
    // default made the close wait two reconnect delays (4 s of the 5 s bound on a quiet machine, 2026-12-01).
    const live = await server.connect('system', { maxReconnectAttempts: 5, reconnectTimeWait: 100 })
    const closed = live.closed()
    const r = await runCli(['creds', 'rotate', 'system', '--json'], { env: cli })
    assert.equal(r.code, 0, r.stderr)
    const out = JSON.parse(r.stdout) as { user: string; creds_file: string; key: string; revoked: string[] }
    assert.equal(out.user, 'system')
    assert.deepEqual(out.revoked, [await credsUserKey(old)])
    assert.equal(out.key, await credsUserKey(creds('system')))
    assert.equal(statSync(out.creds_file).mode & 0o777, 0o600, 'the creds file is private')
    const secrets = readFileSync(out.creds_file, 'utf8')
      .split('\n')
      .filter((l) => /^(eyJ|SU)/.test(l))
    assert.equal(secrets.length, 2)
    assert.ok(!secrets.some((s) => r.stdout.includes(s) || r.stderr.includes(s)), 'creds are never printed')
    revoked.push(['system (first)', old])

    const why = await within(closed, 5000, "the old key's live connection to be closed")
    assert.ok(why instanceof Error, `closed by the server: ${String(why)}`)
    await refusedWith(server.url, old, 'the old system key')
    await connectsWith(server.url, creds('system'))
    await tenantAdd('acme')
    const relay = creds('relay')
    const rotated = await runCli(['creds', 'rotate', 'relay'], { env: cli })
    assert.equal(rotated.code, 0, rotated.stderr)
    await refusedWith(server.url, relay, 'the old relay key, revoked through the new system creds')
    const system = await listed('system')
    assert.equal(system?.key, out.key)
    assert.equal(system?.revoked, 1)
  })

  test('a nats-server restart keeps the revocation, with its old config or one re-generated from the auth dir', async () => {
    await server.restart()
    for (const [what, c] of revoked) await refusedWith(server.url, c, what)
    await server.restart({ reconfigure: true })
    for (const [what, c] of revoked) await refusedWith(server.url, c, what)
    await tenantAdd('beta')
  })

  test('a re-run of nats-setup preloads it: a server started afresh refuses the old key, the new one pushes', async () => {
    await checkSetupRerun(server.authDir!, 'SYS', revoked, async (url) => {
      const nc = await connect({ servers: url, authenticator: credsAuthenticator(creds('system')) })
      try {
        await pushAccountJwt(nc, readFileSync(join(server.authDir!, 'accounts', 'EVENTPLANE.jwt'), 'utf8').trim())
      } finally {
        await nc.close()
      }
    })
  })

  test('--keep-old: the old system key works until creds revoke-old (every user), then it is refused', async () => {
    const system = creds('system')
    const controller = creds('controller')
    const operator = creds('operator')
    for (const user of ['system', 'controller', 'operator']) {
      const r = await runCli(['creds', 'rotate', user, '--keep-old'], { env: cli })
      assert.equal(r.code, 0, r.stderr)
      // The creds line says what the file is for: system is the NATS system account's user and operator the user
      // evtctl itself connects as, neither a service tier with hosts of its own; a service's line names its hosts.
      const line = /^creds .*$/m.exec(r.stdout)?.[0] ?? ''
      if (user === 'system') {
        assert.match(line, /the NATS system account's user, with which evtctl's tenant, creds and keys commands push/)
        assert.doesNotMatch(line, /hosts,|system's/)
      } else if (user === 'operator') {
        assert.match(line, /the log account's operator user, with which evtctl's operator commands and `evtctl up`/)
        assert.doesNotMatch(line, /operator's/)
      } else assert.match(line, /copy it to the controller's hosts, keep it secret\)$/)
    }
    await connectsWith(server.url, system)
    await connectsWith(server.url, creds('system'))
    assert.deepEqual((await listed('system'))?.staged, [await credsUserKey(system)])

    const done = await runCli(['creds', 'revoke-old', '--json'], { env: cli })
    assert.equal(done.code, 0, done.stderr)
    const keys = (JSON.parse(done.stdout) as { revoked: string[] }).revoked
    assert.deepEqual(
      keys.sort(),
      [await credsUserKey(system), await credsUserKey(controller), await credsUserKey(operator)].sort(),
    )
    revoked.push(['system (staged)', system])
    for (const [what, c] of revoked) await refusedWith(server.url, c, what)
    await refusedWith(server.url, controller, 'the staged controller key')
    await refusedWith(server.url, operator, 'the staged operator key')
    assert.deepEqual((await listed('system'))?.staged, [])
    await tenantAdd('gamma')
  })

  test('a push that fails: exit 3 naming creds revoke-old system, the new creds work, the old until it is pushed', async () => {
    const old = creds('system')
    const r = await runCli(['creds', 'rotate', 'system'], { env: { ...cli, EVENTPLANE_NATS_URL: UNREACHABLE_NATS } })
    assert.equal(r.code, 3, r.stderr)
    const failure = failureLine(r)
    assert.equal(failure.code, 'bus.unavailable')
    assert.match(failure.message, /not pushed .*evtctl creds revoke-old system$/)
    assert.notEqual(await credsUserKey(creds('system')), await credsUserKey(old), 'the new creds are written')
    await connectsWith(server.url, creds('system'))
    await connectsWith(server.url, old)

    const pushed = await runCli(['creds', 'revoke-old', 'system'], { env: cli })
    assert.equal(pushed.code, 0, pushed.stderr)
    assert.match(pushed.stdout, /no staged keys/)
    revoked.push(['system (push failed)', old])
    for (const [what, c] of revoked) await refusedWith(server.url, c, what)
    await connectsWith(server.url, creds('system'))
  })
})
