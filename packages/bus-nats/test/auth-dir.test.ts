/**
 * The auth dir's secrets (mutation audit 2026-11-30, NATS boundary): keys and creds are mode 0600 in a 0700
 * directory, also when a file existed with wider permissions, and running nats-setup again rotates nothing; its files
 * keep the names older auth dirs have (mutation audit 2026-12-02, mutrand).
 */
import assert from 'node:assert/strict'
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { initAuthDir, writeSecretFile } from '../src/nats-config/auth-dir.ts'

const mode = (path: string): number => statSync(path).mode & 0o777

function secretsUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.nk') || f.endsWith('.creds'))
    .map((f) => join(dir, f))
}

describe('auth dir', () => {
  const dirs: string[] = []
  const fresh = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'ep-authdir-'))
    dirs.push(dir)
    return join(dir, 'auth')
  }
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  test('every key and creds file is mode 0600, the directory 0700; a secret that was 0644 is 0600 once rewritten', async () => {
    const auth = await initAuthDir(fresh())
    assert.equal(mode(auth.dir), 0o700)
    const secrets = secretsUnder(auth.dir)
    assert.ok(secrets.length >= 8, `keys and creds: ${secrets.length}`)
    for (const f of secrets) assert.equal(mode(f), 0o600, f)
    const file = join(auth.dir, 'tenants', 'widened.creds')
    writeFileSync(file, 'old', { mode: 0o644 })
    chmodSync(file, 0o644)
    writeSecretFile(file, 'new')
    assert.equal(mode(file), 0o600)
    assert.equal(readFileSync(file, 'utf8'), 'new')
  })

  test('a second run keeps every key, JWT and creds file as it was; a directory opened wider is closed again', async () => {
    const dir = fresh()
    const first = await initAuthDir(dir)
    const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => /\.(nk|jwt|creds)$/.test(f))
    const before = new Map(files.map((f) => [f, readFileSync(join(dir, f), 'utf8')]))
    chmodSync(dir, 0o755)
    const second = await initAuthDir(dir)
    assert.equal(mode(dir), 0o700)
    assert.equal(second.operator.getPublicKey(), first.operator.getPublicKey())
    for (const [f, content] of before) assert.equal(readFileSync(join(dir, f), 'utf8'), content, `${f} unchanged`)
  })

  test('its files have the names the docs give and older auth dirs hold (accounts/SYS.jwt …)', async () => {
    // Upgrades read an existing auth dir by these names (mutation audit 2026-12-02, random sample: mutrand).
    const auth = await initAuthDir(fresh())
    const files = readdirSync(auth.dir, { recursive: true, encoding: 'utf8' }).sort()
    assert.deepEqual(files, [
      'accounts',
      ...['EVENTPLANE', 'SYS'].flatMap((a) =>
        ['jwt', 'nk', 'signing.nk', 'signing.pushed'].map((x) => `accounts/${a}.${x}`),
      ),
      'creds',
      ...['controller', 'gateway', 'operator', 'relay', 'system'].map((u) => `creds/${u}.creds`),
      'operator.jwt',
      'operator.nk',
      'operator.signing.nk',
      'operator.signing.pushed',
      'tenants',
    ])
    const claims = (file: string) =>
      JSON.parse(Buffer.from(readFileSync(join(auth.dir, file), 'utf8').trim().split('.')[1]!, 'base64url').toString())
    assert.equal(claims('accounts/SYS.jwt').name, 'SYS')
    assert.equal(claims('accounts/EVENTPLANE.jwt').name, 'EVENTPLANE')
  })
})
