import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { isEvtctlError } from '../src/cli-error.ts'
import { DEFAULT_DATABASE_URL } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { DEFAULT_NATS_URL, resolveConfig } from '../src/config.ts'
import { UNREACHABLE_PG, failureLine, killAll, runCli } from './helpers.ts'

describe('resolveConfig: flag, then env, then config file, then default', () => {
  let dir: string
  const file = (name: string, content: unknown) => {
    const path = join(dir, name)
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content))
    return path
  }
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'evtctl-config-'))
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  test('defaults are the local servers and no credentials', () => {
    const c = resolveConfig({}, { env: {}, cwd: dir })
    assert.equal(c.databaseUrl, DEFAULT_DATABASE_URL)
    assert.equal(c.natsUrl, DEFAULT_NATS_URL)
    assert.equal(c.natsUser, undefined)
    assert.equal(c.natsPassword, undefined)
    assert.deepEqual(c.sources, {
      databaseUrl: 'default',
      natsUrl: 'default',
      natsUser: 'unset',
      natsPassword: 'unset',
      natsCreds: 'unset',
      natsAuthDir: 'unset',
      tenant: 'unset',
      domain: 'unset',
    })
  })

  test('each setting takes the first source that has it', () => {
    const cfg = file('layered.json', {
      databaseUrl: 'postgres://file/db',
      natsUrl: 'nats://file:4222',
      natsUser: 'file-user',
      tenant: 'filetenant',
    })
    const env = { EVENTPLANE_CONFIG: cfg, EVENTPLANE_NATS_URL: 'nats://env:4222', EVENTPLANE_TENANT: 'envtenant' }
    const c = resolveConfig({ tenant: 'flagtenant' }, { env, cwd: dir })
    assert.equal(c.databaseUrl, 'postgres://file/db')
    assert.equal(c.natsUrl, 'nats://env:4222')
    assert.equal(c.natsUser, 'file-user')
    assert.equal(c.tenant, 'flagtenant')
    assert.deepEqual(c.sources, {
      databaseUrl: 'file',
      natsUrl: 'env',
      natsUser: 'file',
      natsPassword: 'unset',
      natsCreds: 'unset',
      natsAuthDir: 'unset',
      tenant: 'flag',
      domain: 'unset',
    })
    assert.equal(c.configFile, cfg)
  })

  test('an empty EVENTPLANE_* variable is unset: the config file or the default applies', () => {
    const cfg = file('under-empty.json', { databaseUrl: 'postgres://file/db', tenant: 'filetenant' })
    const env = { EVENTPLANE_CONFIG: cfg, EVENTPLANE_DATABASE_URL: '', EVENTPLANE_TENANT: '', EVENTPLANE_NATS_URL: '' }
    const c = resolveConfig({}, { env, cwd: dir })
    assert.deepEqual([c.databaseUrl, c.tenant, c.natsUrl], ['postgres://file/db', 'filetenant', DEFAULT_NATS_URL])
    assert.deepEqual([c.sources.databaseUrl, c.sources.tenant, c.sources.natsUrl], ['file', 'file', 'default'])
  })

  test('the domain: a file path is taken relative to where it was given, a package name as it is', () => {
    const sub = mkdtempSync(join(dir, 'domain-'))
    const cfg = file('domain.json', { domain: './domains/mine.js' })
    const fromFile = resolveConfig({}, { env: { EVENTPLANE_CONFIG: cfg }, cwd: sub })
    assert.equal(fromFile.domain, join(dir, 'domains/mine.js'))
    assert.equal(fromFile.sources.domain, 'file')
    const fromEnv = resolveConfig({}, { env: { EVENTPLANE_CONFIG: cfg, EVENTPLANE_DOMAIN: 'mine.ts' }, cwd: sub })
    assert.deepEqual([fromEnv.domain, fromEnv.sources.domain], [join(sub, 'mine.ts'), 'env'])
    const fromFlag = resolveConfig({ domain: '@acme/domain' }, { env: { EVENTPLANE_DOMAIN: 'x.js' }, cwd: sub })
    assert.deepEqual([fromFlag.domain, fromFlag.sources.domain], ['@acme/domain', 'flag'])
  })

  test('./eventplane.json is read only when present; --config beats EVENTPLANE_CONFIG', () => {
    const local = mkdtempSync(join(dir, 'cwd-'))
    writeFileSync(join(local, 'eventplane.json'), JSON.stringify({ tenant: 'localtenant' }))
    assert.equal(resolveConfig({}, { env: {}, cwd: local }).tenant, 'localtenant')
    const other = file('other.json', { tenant: 'othertenant' })
    const named = file('named.json', { tenant: 'namedtenant' })
    assert.equal(
      resolveConfig({ config: named }, { env: { EVENTPLANE_CONFIG: other }, cwd: local }).tenant,
      'namedtenant',
    )
    assert.equal(resolveConfig({}, { env: { EVENTPLANE_CONFIG: other }, cwd: local }).tenant, 'othertenant')
  })

  test('a creds file and an auth dir resolve to absolute paths (file values relative to the config file); creds exclude user and password', () => {
    const cfg = file('with-creds.json', { natsCreds: 'acme.creds', natsAuthDir: 'auth' })
    const fromFile = resolveConfig({ config: cfg }, { env: {}, cwd: '/' })
    assert.equal(fromFile.natsCreds, join(dir, 'acme.creds'))
    assert.equal(fromFile.natsAuthDir, join(dir, 'auth'))
    const fromEnv = resolveConfig({}, { env: { EVENTPLANE_NATS_CREDS: 'x.creds' }, cwd: dir })
    assert.equal(fromEnv.natsCreds, join(dir, 'x.creds'))
    assert.equal(fromEnv.sources.natsCreds, 'env')
    assert.throws(
      () => resolveConfig({ natsCreds: 'x.creds' }, { env: { EVENTPLANE_NATS_USER: 'acme' }, cwd: dir }),
      (e) => isEvtctlError(e, 'cli.config'),
    )
    assert.throws(
      () => resolveConfig({ natsCreds: 'x.creds' }, { env: { EVENTPLANE_NATS_PASSWORD: 'hunter2' }, cwd: dir }),
      (e) => isEvtctlError(e, 'cli.config') && /a NATS creds file and a NATS user or password/.test(e.message),
    )
  })

  test('passwords come from a file (trailing newline dropped) or EVENTPLANE_NATS_PASSWORD, never both', () => {
    const pw = file('pw', 'hunter2\n')
    assert.equal(resolveConfig({}, { env: { EVENTPLANE_NATS_PASSWORD_FILE: pw }, cwd: dir }).natsPassword, 'hunter2')
    assert.equal(resolveConfig({}, { env: { EVENTPLANE_NATS_PASSWORD: 'x' }, cwd: dir }).natsPassword, 'x')
    const relative = file('with-pw.json', { natsPasswordFile: 'pw' })
    assert.equal(resolveConfig({ config: relative }, { env: {}, cwd: '/' }).natsPassword, 'hunter2')
    assert.equal(
      resolveConfig({ natsPasswordFile: pw }, { env: { EVENTPLANE_NATS_PASSWORD: 'x' }, cwd: dir }).natsPassword,
      'hunter2',
    )
    assert.throws(
      () => resolveConfig({}, { env: { EVENTPLANE_NATS_PASSWORD_FILE: pw, EVENTPLANE_NATS_PASSWORD: 'x' }, cwd: dir }),
      (e) => isEvtctlError(e, 'cli.config'),
    )
  })

  test('bad config is a cli.config error that never echoes a secret', () => {
    const cases: [Record<string, string>, () => string | undefined][] = [
      [{}, () => file('bad.json', '{not json')],
      [{}, () => file('array.json', '[]')],
      [{}, () => file('unknown.json', { databaseURL: 'postgres://x' })],
      [{}, () => file('plain-pw.json', { natsPassword: 'hunter2' })],
      [{}, () => file('empty-creds.json', { natsCreds: '' })],
      [{}, () => file('empty-domain.json', { domain: '' })],
      [{}, () => join(dir, 'missing.json')],
      [{ EVENTPLANE_NATS_PASSWORD_FILE: join(dir, 'missing-pw') }, () => undefined],
      [{ EVENTPLANE_DATABASE_URL: 'mysql://u:hunter2@h/db' }, () => undefined],
      [{ EVENTPLANE_NATS_URL: 'not a url hunter2' }, () => undefined],
    ]
    for (const [env, makeFile] of cases) {
      const config = makeFile()
      assert.throws(
        () => resolveConfig(config === undefined ? {} : { config }, { env, cwd: dir }),
        (e) => isEvtctlError(e, 'cli.config') && !e.message.includes('hunter2'),
        JSON.stringify({ env, config }),
      )
    }
  })

  test('a bad tenant is a name error', () => {
    assert.throws(
      () => resolveConfig({ tenant: 'a.b' }, { env: {}, cwd: dir }),
      (e) => isEventplaneError(e, 'core.invalid_name'),
    )
  })
})

describe('evtctl picks its database by the same precedence', () => {
  let db: TestDatabase
  let dir: string
  const databaseOf = (stdout: string) => (JSON.parse(stdout) as { database: string }).database

  before(async () => {
    db = await createTestDatabase('ep_cli_config')
    dir = mkdtempSync(join(tmpdir(), 'evtctl-config-cli-'))
  })
  after(async () => {
    killAll()
    rmSync(dir, { recursive: true, force: true })
    await db.drop()
  })

  test('./eventplane.json in the working directory is used when nothing else is set', async () => {
    writeFileSync(join(dir, 'eventplane.json'), JSON.stringify({ databaseUrl: db.url }))
    const r = await runCli(['status', '--json'], { cwd: dir })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(databaseOf(r.stdout), db.url)
  })

  test('env beats the file and a flag beats env', async () => {
    writeFileSync(join(dir, 'eventplane.json'), JSON.stringify({ databaseUrl: UNREACHABLE_PG }))
    const viaEnv = await runCli(['status', '--json'], { cwd: dir, env: { EVENTPLANE_DATABASE_URL: db.url } })
    assert.equal(viaEnv.code, 0, viaEnv.stderr)
    const viaFlag = await runCli(['status', '--json', '--database-url', db.url], {
      cwd: dir,
      env: { EVENTPLANE_DATABASE_URL: UNREACHABLE_PG },
    })
    assert.equal(viaFlag.code, 0, viaFlag.stderr)
    assert.equal(databaseOf(viaFlag.stdout), db.url)
    const fileWins = await runCli(['status', '--json'], { cwd: dir })
    assert.equal(fileWins.code, 3)
  })

  test('a malformed or missing config file is exit 1 with one line', async () => {
    writeFileSync(join(dir, 'broken.json'), '{"databaseUrl":')
    for (const args of [
      ['--config', join(dir, 'broken.json')],
      ['--config', join(dir, 'nope.json')],
    ]) {
      const r = await runCli(['status', ...args], { cwd: dir })
      assert.equal(r.code, 1)
      assert.equal(failureLine(r).code, 'cli.config')
    }
  })
})
