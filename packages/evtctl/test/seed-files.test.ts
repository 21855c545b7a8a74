/**
 * A bad seed file in the auth dir, as an operator meets it: `evtctl tenant add`, `evtctl keys rotate` exit 1
 * with one line `evtctl: bus.config: seed file <file> …` saying what is wrong (seed-file.ts), print no seed,
 * and write nothing.
 */
import assert from 'node:assert/strict'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { type TestNatsServer, dirSnapshot, startNatsServer } from '@eventplane/bus-nats/testing'
import { failureLine, killAll, runCli } from './helpers.ts'

describe('evtctl on an auth dir with a bad seed file', () => {
  let server: TestNatsServer
  let cli: Record<string, string>
  before(async () => {
    server = await startNatsServer({ tenants: ['acme'] })
    cli = { EVENTPLANE_NATS_URL: server.url, EVENTPLANE_NATS_AUTH_DIR: server.authDir! }
  })
  after(async () => {
    killAll()
    await server?.stop()
  })

  test('tenant add, keys rotate log and keys rotate tenant: exit 1, bus.config naming the file and the fault, nothing written', async () => {
    const dir = server.authDir!
    const seed = (f: string) => readFileSync(join(dir, f), 'utf8').trim()
    const seeds = new Map(['tenants/acme.nk', 'accounts/EVENTPLANE.nk', 'operator.nk'].map((f) => [f, seed(f)]))
    const cases: [string[], string, () => void, RegExp][] = [
      [
        ['tenant', 'add', 'acme'],
        'tenants/acme.nk',
        () => writeFileSync(join(dir, 'tenants/acme.nk'), `${seeds.get('tenants/acme.nk')!.slice(0, -2)}\n`),
        /does not hold an nkey seed/,
      ],
      [
        ['keys', 'rotate', 'log'],
        'accounts/EVENTPLANE.nk',
        () => writeFileSync(join(dir, 'accounts/EVENTPLANE.nk'), seeds.get('operator.nk')!),
        /holds an operator seed, not an account seed/,
      ],
      [
        ['keys', 'rotate', 'tenant', 'acme'],
        'tenants/acme.nk',
        () => rmSync(join(dir, 'tenants/acme.nk')),
        /is missing \(an account seed\): tenant acme has no account key/,
      ],
    ]
    for (const [args, file, breakIt, problem] of cases) {
      breakIt()
      const before = dirSnapshot(dir)
      const r = await runCli(args, { env: cli })
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`)
      const failure = failureLine(r)
      assert.equal(failure.code, 'bus.config')
      assert.ok(failure.message.startsWith(`seed file ${join(dir, file)} `), failure.message)
      assert.match(failure.message, problem)
      for (const s of seeds.values()) assert.equal(r.stderr.includes(s.slice(0, 20)), false, 'no seed printed')
      assert.deepEqual(dirSnapshot(dir), before, `${args.join(' ')}: nothing written`)
      for (const [f, s] of seeds) writeFileSync(join(dir, f), `${s}\n`, { mode: 0o600 })
    }
    const again = await runCli(['keys', 'rotate', 'tenant', 'acme'], { env: cli })
    assert.equal(again.code, 0, `restored, it rotates: ${again.stderr}`)
  })
})
