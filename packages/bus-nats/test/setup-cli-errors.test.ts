/**
 * `nats-setup`'s bad input: each is `bus.config` in one line that names what is wrong, before anything is written,
 * and the installed bin prints it with its code (as evtctl prints its failures), exit 1.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { isEventplaneError } from '@eventplane/core'
import { natsSetupMain } from '../src/nats-config/index.ts'

const BIN = fileURLToPath(new URL('../src/bin/nats-setup.ts', import.meta.url))
const quiet = { stdout: { write: () => true }, stderr: { write: () => true } }

/** A `bus.config` of one line whose message matches `message`. */
const config = (message: RegExp) => (e: unknown) =>
  isEventplaneError(e, 'bus.config') && !e.message.includes('\n') && message.test(e.message)

describe('nats-setup on bad input', () => {
  const root = mkdtempSync(join(tmpdir(), 'ep-setup-errors-'))
  const auth = join(root, 'auth')
  const store = join(root, 'store')
  after(() => rmSync(root, { recursive: true, force: true }))

  test('an --out in a directory that does not exist makes it; one that cannot be made is bus.config naming it, nothing written', async () => {
    writeFileSync(join(root, 'a-file'), '')
    const blocked = join(root, 'a-file', 'nats.conf')
    await assert.rejects(
      natsSetupMain(['--auth-dir', auth, '--store-dir', store, '--out', blocked], quiet),
      config(new RegExp(`^cannot create the directory of --out ${blocked} \\((?:EEXIST|ENOTDIR)\\)$`)),
    )
    assert.equal(existsSync(auth), false, 'no auth dir')
    assert.equal(existsSync(store), false, 'no store dir')
    const out = join(root, 'deploy', 'conf', 'nats.conf')
    assert.equal(await natsSetupMain(['--auth-dir', auth, '--store-dir', store, '--out', out], quiet), 0)
    assert.ok(existsSync(out), 'the config written in the directory made for it')
    rmSync(auth, { recursive: true })
    rmSync(store, { recursive: true })
  })

  test('an --out that is a directory: bus.config in one line with the system code, not the raw error', async () => {
    const dir = mkdtempSync(join(root, 'out-dir-'))
    await assert.rejects(
      natsSetupMain(['--auth-dir', join(root, 'auth-eisdir'), '--store-dir', store, '--out', dir], quiet),
      config(new RegExp(`^cannot write the config to ${dir} \\(EISDIR\\)$`)),
    )
  })

  test('an unknown option, or the required ones missing: one line pointing at the help', async () => {
    await assert.rejects(
      natsSetupMain(['--auth-dir', auth, '--store-dir', store, '--outt', 'x'], quiet),
      config(/^Unknown option '--outt'.* \(see nats-setup --help\)$/),
    )
    await assert.rejects(
      natsSetupMain(['--auth-dir', auth], quiet),
      config(/^--auth-dir and --store-dir are required \(see nats-setup --help\)$/),
    )
    assert.equal(existsSync(auth), false, 'no auth dir')
  })

  test('the bin prints one line with the code and exits 1', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', BIN, '--auth-dir', auth], { encoding: 'utf8' })
    assert.equal(r.status, 1, r.stderr)
    assert.equal(r.stderr, 'nats-setup: bus.config: --auth-dir and --store-dir are required (see nats-setup --help)\n')
  })
})
