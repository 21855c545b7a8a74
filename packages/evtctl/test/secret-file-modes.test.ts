import assert from 'node:assert/strict'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { EventFactory } from '@eventplane/core'
import { killAll, runCli } from './helpers.ts'

const warnings = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('evtctl: warning: '))
    .map((l) => l.slice('evtctl: warning: '.length))

describe('evtctl warns about secrets others may read and settings others may change, by group too', () => {
  let dir: string
  let file: string
  /** A run that resolves the whole configuration and touches no server. */
  const dryRun = (env: Record<string, string>, extra: string[] = []) =>
    runCli(['import', file, '--tenant', 'acme', '--dry-run', '--rehash', ...extra], { env })

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'evtctl-modes-'))
    file = join(dir, 'one.ndjson')
    const e = EventFactory.forTenant('acme', { causedBy: 'user:a' }).intent({ category: 'c', id: 'i' }, 't', {})
    writeFileSync(file, `${JSON.stringify(e)}\n`)
  })
  after(() => {
    killAll()
    rmSync(dir, { recursive: true, force: true })
  })

  test('a password file its group can read, named in the config file or by EVENTPLANE_NATS_PASSWORD_FILE', async () => {
    const pw = join(dir, 'nats.pw')
    writeFileSync(pw, 'hunter2\n')
    const config = join(dir, 'pw.json')
    writeFileSync(config, JSON.stringify({ natsPasswordFile: pw }), { mode: 0o600 })
    for (const [mode, env, extra] of [
      [0o640, {}, ['--config', config]],
      [0o644, { EVENTPLANE_NATS_PASSWORD_FILE: pw }, []],
    ] as const) {
      chmodSync(pw, mode)
      const r = await dryRun(env, [...extra])
      assert.equal(r.code, 0, r.stderr)
      const octal = `0${mode.toString(8)}`
      assert.deepEqual(warnings(r.stderr), [
        `password file ${pw} holds a password and is readable by group or others (mode ${octal}); chmod 600 ${pw}`,
      ])
      assert.doesNotMatch(r.stderr, /hunter2/)
    }
  })

  test('a NATS creds file its group can read, named by the flag, EVENTPLANE_NATS_CREDS or the config file', async () => {
    // Not a real creds file: the warning comes from its mode alone, before anything reads it.
    const creds = join(dir, 'relay.creds')
    writeFileSync(creds, '-----BEGIN USER NKEY SEED-----\nSUAFAKESEED\n------END USER NKEY SEED------\n')
    const config = join(dir, 'creds.json')
    writeFileSync(config, JSON.stringify({ natsCreds: 'relay.creds' }), { mode: 0o600 })
    for (const [mode, env, extra] of [
      [0o640, {}, ['--nats-creds', creds]],
      [0o604, { EVENTPLANE_NATS_CREDS: creds }, []],
      [0o644, {}, ['--config', config]],
    ] as const) {
      chmodSync(creds, mode)
      const r = await dryRun(env, [...extra])
      assert.equal(r.code, 0, r.stderr)
      const octal = `0${mode.toString(8)}`
      assert.deepEqual(warnings(r.stderr), [
        `NATS creds file ${creds} holds a user's secret key and is readable by group or others (mode ${octal}); chmod 600 ${creds}`,
      ])
      assert.doesNotMatch(r.stderr, /SUAFAKESEED/)
    }
    chmodSync(creds, 0o600)
    const quiet = await dryRun({}, ['--nats-creds', creds])
    assert.equal(quiet.code, 0, quiet.stderr)
    assert.deepEqual(warnings(quiet.stderr), [])
  })

  test('a config file its group can change; one holding a NATS URL with a password that others can read', async () => {
    const config = join(dir, 'eventplane.json')
    const cases: [number, object, RegExp][] = [
      [0o620, { tenant: 'acme' }, /^config file .*eventplane\.json is writable by group or others \(mode 0620\)/],
      [
        0o644,
        { natsUrl: 'nats://u:hunter2@127.0.0.1:4222' },
        /^config file .*eventplane\.json holds a password and is readable by group or others \(mode 0644\)/,
      ],
    ]
    for (const [mode, content, expected] of cases) {
      writeFileSync(config, JSON.stringify(content))
      chmodSync(config, mode)
      const r = await dryRun({}, ['--config', config])
      assert.equal(r.code, 0, r.stderr)
      const w = warnings(r.stderr)
      assert.equal(w.length, 1, r.stderr)
      assert.match(w[0]!, expected)
      assert.doesNotMatch(r.stderr, /hunter2/)
    }
  })

  test('a misspelt EVENTPLANE_NATS_* variable is warned about; per-user NATS passwords are not', async () => {
    const r = await dryRun({ EVENTPLANE_NATS_URLL: 'nats://127.0.0.1:4222', EVENTPLANE_NATS_PASSWORD_RELAY: 'x' })
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(warnings(r.stderr), [
      'EVENTPLANE_NATS_URLL is not a setting eventplane knows, so it is ignored (did you mean EVENTPLANE_NATS_URL?)',
    ])
  })
})
