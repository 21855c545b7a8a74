import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { EventFactory } from '@eventplane/core'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { LAUNCHER, failureLine, killAll, runCli } from './helpers.ts'

/** The escape character that starts every ANSI sequence. */
const ESC = String.fromCharCode(27)

/** The file is a hand-written line without a hash, so every import here says it is imported with --rehash. */
const withoutRehashNote = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => !l.startsWith('evtctl: WARNING: --rehash:'))
    .join('\n')

const warnings = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('evtctl: warning: '))
    .map((l) => l.slice('evtctl: warning: '.length))

describe('evtctl warns about typos and exposed secrets, and names what failed', () => {
  let dir: string
  let file: string
  let bare: TestDatabase
  const dryRun = (extra: string[] = []) => ['import', file, '--tenant', 'acme', '--dry-run', '--rehash', ...extra]

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'evtctl-warn-'))
    file = join(dir, 'one.ndjson')
    const e = EventFactory.forTenant('acme', { causedBy: 'user:a' }).intent({ category: 'c', id: 'i' }, 't', {})
    writeFileSync(file, `${JSON.stringify(e)}\n`)
    bare = await createTestDatabase('ep_cli_bare', { migrate: false })
  })
  after(async () => {
    killAll()
    rmSync(dir, { recursive: true, force: true })
    await bare?.drop()
  })

  test('an unknown EVENTPLANE_* variable is warned about with the name it most likely meant', async () => {
    const r = await runCli(dryRun(), {
      env: { EVENTPLANE_DATABSE_URL: 'postgres://x@h/db', EVENTPLANE_DATABASE_URL_RAEDER: 'postgres://x@h/db' },
    })
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(warnings(r.stderr), [
      'EVENTPLANE_DATABASE_URL_RAEDER is not a setting eventplane knows, so it is ignored (did you mean EVENTPLANE_DATABASE_URL_READER?)',
      'EVENTPLANE_DATABSE_URL is not a setting eventplane knows, so it is ignored (did you mean EVENTPLANE_DATABASE_URL?)',
    ])
    const known = await runCli(dryRun(), { env: { EVENTPLANE_DATABASE_URL_READER: 'postgres://x@h/db' } })
    assert.equal(withoutRehashNote(known.stderr), '')
  })

  test('an unknown config key is refused with the key it most likely meant', async () => {
    const config = join(dir, 'typo.json')
    writeFileSync(config, JSON.stringify({ databaseURL: 'postgres://x@h/db' }), { mode: 0o600 })
    const r = await runCli(dryRun(['--config', config]))
    assert.equal(r.code, 1)
    assert.match(failureLine(r).message, /unknown key "databaseURL" \(did you mean "databaseUrl"\?\)$/)
  })

  test('a password in --database-url or --nats-url is warned about, and never printed', async () => {
    const r = await runCli(
      dryRun(['--database-url', 'postgres://admin:hunter2@127.0.0.1/db', '--nats-url', 'nats://u:hunter2@127.0.0.1']),
    )
    assert.equal(r.code, 0, r.stderr)
    const w = warnings(r.stderr)
    assert.equal(w.length, 2)
    assert.match(
      w[0]!,
      /^the URL of --database-url holds a password, .*\/proc\/<pid>\/cmdline: set EVENTPLANE_DATABASE_URL/,
    )
    assert.match(w[1]!, /^the URL of --nats-url holds a password/)
    assert.doesNotMatch(r.stderr, /hunter2/)
    const viaEnv = await runCli(dryRun(), { env: { EVENTPLANE_DATABASE_URL: 'postgres://admin:hunter2@127.0.0.1/db' } })
    assert.equal(withoutRehashNote(viaEnv.stderr), '')
  })

  test('like ssh: a password file readable by others, a config file others can write or, holding a password, read', async () => {
    const pw = join(dir, 'nats.pw')
    writeFileSync(pw, 'hunter2\n')
    const config = join(dir, 'eventplane.json')
    const run = () => runCli(dryRun(['--config', config]))
    const cases: [number, number, object, RegExp | undefined][] = [
      [
        0o644,
        0o600,
        { natsPasswordFile: pw },
        /^password file .*nats\.pw holds a password and is readable by group or others \(mode 0644\); chmod 600 /,
      ],
      [0o600, 0o600, { natsPasswordFile: pw }, undefined],
      [
        0o600,
        0o666,
        { tenant: 'acme' },
        /^config file .*eventplane\.json is writable by group or others \(mode 0666\)/,
      ],
      [0o600, 0o644, { tenant: 'acme' }, undefined],
      [
        0o600,
        0o644,
        { databaseUrl: 'postgres://u:hunter2@127.0.0.1/db' },
        /^config file .* holds a password and is readable by group or others \(mode 0644\)/,
      ],
    ]
    for (const [pwMode, configMode, content, expected] of cases) {
      writeFileSync(config, JSON.stringify(content))
      chmodSync(config, configMode)
      chmodSync(pw, pwMode)
      const r = await run()
      assert.equal(r.code, 0, r.stderr)
      const w = warnings(r.stderr)
      if (expected === undefined) assert.deepEqual(w, [], JSON.stringify(content))
      else {
        assert.equal(w.length, 1, r.stderr)
        assert.match(w[0]!, expected)
      }
      assert.doesNotMatch(r.stderr, /hunter2/)
    }
  })

  test('connection and login failures name the database and the role, never the password', async () => {
    const wrongRole = await runCli(['streams', '--tenant', 'acme'], {
      env: {
        EVENTPLANE_DATABASE_URL: bare.url,
        EVENTPLANE_DATABASE_URL_READER: `postgres://no_such_role_x:hunter2@127.0.0.1:5432/${bare.name}`,
      },
    })
    assert.equal(wrongRole.code, 4, wrongRole.stderr)
    const auth = failureLine(wrongRole)
    assert.equal(auth.code, 'store.auth_failed')
    assert.match(
      auth.message,
      new RegExp(`^PostgreSQL refused the login to database "${bare.name}" as role "no_such_role_x" at `),
    )
    assert.doesNotMatch(wrongRole.stderr, /hunter2/)

    const missing = await runCli(['streams', '--tenant', 'acme'], {
      env: { EVENTPLANE_DATABASE_URL: `${bare.url}_missing` },
    })
    assert.equal(missing.code, 3)
    assert.match(
      failureLine(missing).message,
      new RegExp(
        `^database "${bare.name}_missing" does not exist at \\S+ \\(connecting as role "eventplane_reader"\\)$`,
      ),
    )

    const unmigrated = await runCli(['streams', '--tenant', 'acme'], { env: { EVENTPLANE_DATABASE_URL: bare.url } })
    assert.equal(unmigrated.code, 3)
    assert.match(
      failureLine(unmigrated).message,
      new RegExp(
        `^the eventplane schema is missing in database "${bare.name}" as role "postgres" at \\S+: run evtctl migrate`,
      ),
    )
  })

  test('colour only on a terminal without NO_COLOR or TERM=dumb; readable logs on a terminal, JSON lines otherwise', () => {
    const args = [...dryRun(['--log-level', 'info'])].join(' ')
    // script(1) runs evtctl on a pseudo-terminal; its output is what the terminal would show.
    const onTty = (extra: string) =>
      spawnSync('script', ['-qec', `${extra} node ${LAUNCHER} ${args}`, '/dev/null'], {
        encoding: 'utf8',
        env: process.env,
      })
    const tty = onTty('')
    assert.equal(tty.status, 0, tty.stdout)
    assert.ok(tty.stdout.includes(`${ESC}[1mtenant  kind    events${ESC}[22m`), tty.stdout)
    assert.match(tty.stdout, /INFO.* \(evtctl\): .*import checked/)
    assert.doesNotMatch(tty.stdout, /"level":30/)

    const noColor = onTty('NO_COLOR=1')
    assert.equal(noColor.status, 0, noColor.stdout)
    assert.ok(!noColor.stdout.includes(ESC), noColor.stdout)
    assert.match(noColor.stdout, /INFO \(evtctl\): import checked/)
    const dumb = onTty('TERM=dumb')
    assert.equal(dumb.status, 0, dumb.stdout)
    assert.ok(!dumb.stdout.includes(`${ESC}[1m`), dumb.stdout)

    const piped = spawnSync('node', [LAUNCHER, ...dryRun(['--log-level', 'info'])], { encoding: 'utf8' })
    assert.ok(!(piped.stdout + piped.stderr).includes(ESC))
    assert.match(piped.stderr, /^\{"level":30,.*"msg":"import checked"\}$/m)
  })
})
