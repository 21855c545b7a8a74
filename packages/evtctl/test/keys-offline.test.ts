/**
 * `evtctl keys offline --to` / `keys online --from`: the identity seeds leave the host and come back, printed by
 * path and public key only; in between `tenant add` works (and says its new identity seed stays on the host until
 * `keys offline` runs again, which moves just that one), `tenant revoke` works, and `keys rotate operator` exits 1
 * with one line naming `operator.nk` and the command that brings it back.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { PRINTED_SEED, type TestNatsServer, startNatsServer } from '@eventplane/bus-nats/testing'
import { failureLine, killAll, runCli } from './helpers.ts'

describe('evtctl keys offline and online', () => {
  let server: TestNatsServer
  let off: string
  let cli: Record<string, string>
  before(async () => {
    server = await startNatsServer({ tenants: ['acme'] })
    off = mkdtempSync(join(tmpdir(), 'evtctl-identity-off-'))
    cli = { EVENTPLANE_NATS_URL: server.url, EVENTPLANE_NATS_AUTH_DIR: server.authDir! }
  })
  after(async () => {
    killAll()
    await server?.stop()
    rmSync(off, { recursive: true, force: true })
  })

  test('offline, then tenant add works and keys rotate operator names operator.nk and keys online; online brings them back', async () => {
    const dir = server.authDir!
    const moved = await runCli(['keys', 'offline', '--to', off, '--json'], { env: cli })
    assert.equal(moved.code, 0, moved.stderr)
    const out = JSON.parse(moved.stdout) as { to: string; seeds: { seed: string; key: string }[] }
    assert.deepEqual(out.seeds.map((s) => s.seed).sort(), [
      'accounts/EVENTPLANE.nk',
      'accounts/SYS.nk',
      'operator.nk',
      'tenants/acme.nk',
    ])
    assert.doesNotMatch(moved.stdout + moved.stderr, PRINTED_SEED, 'no seed printed')
    assert.equal(existsSync(join(dir, 'operator.nk')), false)

    // A tenant added now has its identity seed on the host: tenant add says so, keys offline run again moves it.
    const next = `the other identity seeds are offline, tenants/globex.nk is on this host until: evtctl keys offline --to ${off}`
    const added = await runCli(['tenant', 'add', 'globex'], { env: cli })
    assert.equal(added.code, 0, added.stderr)
    assert.ok(added.stdout.split('\n').includes(`next       ${next}`), added.stdout)
    const json = await runCli(['tenant', 'add', 'globex', '--json'], { env: cli })
    assert.equal((JSON.parse(json.stdout) as { next?: string }).next, next)
    const again = await runCli(['keys', 'offline', '--to', off, '--json'], { env: cli })
    assert.equal(again.code, 0, again.stderr)
    const moved2 = JSON.parse(again.stdout) as { seeds: { seed: string }[] }
    assert.deepEqual(
      moved2.seeds.map((s) => s.seed),
      ['tenants/globex.nk'],
    )
    const readded = await runCli(['tenant', 'add', 'globex', '--json'], { env: cli })
    assert.equal((JSON.parse(readded.stdout) as { next?: string }).next, undefined, 'its seed is offline now')
    const revoked = await runCli(['tenant', 'revoke', 'globex'], { env: cli })
    assert.equal(revoked.code, 0, `tenant revoke while the identity seeds are offline: ${revoked.stderr}`)
    const operator = await runCli(['keys', 'rotate', 'operator'], { env: cli })
    assert.equal(operator.code, 1, operator.stderr)
    const failure = failureLine(operator)
    assert.equal(failure.code, 'bus.config')
    assert.ok(failure.message.startsWith(`seed file ${join(dir, 'operator.nk')} is offline`), failure.message)
    assert.ok(failure.message.endsWith(`evtctl keys online --from ${off}`), failure.message)

    const back = await runCli(['keys', 'online', '--from', off], { env: cli })
    assert.equal(back.code, 0, back.stderr)
    assert.match(back.stdout, /^operator\.nk +O[A-Z2-7]{55} \(brought back from /m)
    assert.doesNotMatch(back.stdout + back.stderr, PRINTED_SEED, 'no seed printed')
    const staged = await runCli(['keys', 'rotate', 'operator', '--json'], { env: cli })
    assert.equal(staged.code, 0, staged.stderr)
  })
})
