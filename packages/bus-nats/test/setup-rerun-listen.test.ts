/**
 * `nats-setup` run again over its own config (the upgrade and key-rotation steps of docs/deploying.md) keeps the
 * address the server listens on unless --host or --port say otherwise: a re-run written without them must not move
 * a server off the port every service and tenant connects to.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { natsSetupMain } from '../src/nats-config/index.ts'

/** Runs nats-setup with captured output. */
async function setup(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  const io = { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } }
  const code = await natsSetupMain(argv, io)
  return { code, stdout, stderr }
}

const listenOf = (file: string) => /^listen: "([^"]+)"$/m.exec(readFileSync(file, 'utf8'))?.[1]

describe('nats-setup run again over the config it wrote', () => {
  const root = mkdtempSync(join(tmpdir(), 'ep-setup-listen-'))
  const base = ['--auth-dir', join(root, 'auth'), '--store-dir', join(root, 'store')]
  const conf = join(root, 'nats.conf')
  after(() => rmSync(root, { recursive: true, force: true }))

  test('a re-run without --host and --port keeps the listen address of the config it replaces, and says so', async () => {
    assert.equal((await setup([...base, '--port', '14999', '--host', '127.0.0.2', '--out', conf])).code, 0)
    assert.equal(listenOf(conf), '127.0.0.2:14999')
    const again = await setup([...base, '--out', conf])
    assert.equal(again.code, 0)
    assert.equal(listenOf(conf), '127.0.0.2:14999', 'not moved to the default 127.0.0.1:4222')
    assert.match(again.stderr, /^nats-setup: listen 127\.0\.0\.2:14999 \(kept from the config it replaced; /m)
  })

  test('--port or --host given changes only that part; the other is kept', async () => {
    const port = await setup([...base, '--port', '15000', '--out', conf])
    assert.equal(port.code, 0)
    assert.equal(listenOf(conf), '127.0.0.2:15000')
    assert.equal((await setup([...base, '--host', '127.0.0.1', '--out', conf])).code, 0)
    assert.equal(listenOf(conf), '127.0.0.1:15000')
    const both = await setup([...base, '--host', '127.0.0.1', '--port', '4222', '--out', conf])
    assert.equal(listenOf(conf), '127.0.0.1:4222')
    assert.doesNotMatch(both.stderr, /kept from the config/)
  })

  test('without --out, or with a new --out, the defaults hold (127.0.0.1:4222)', async () => {
    const printed = await setup(base)
    assert.match(printed.stdout, /^listen: "127\.0\.0\.1:4222"$/m)
    const fresh = join(root, 'fresh.conf')
    assert.equal((await setup([...base, '--out', fresh])).code, 0)
    assert.equal(listenOf(fresh), '127.0.0.1:4222')
  })

  test('a replaced config whose listen port is not a port is bus.config naming the file', async () => {
    const bad = join(root, 'bad.conf')
    writeFileSync(bad, 'listen: "127.0.0.1:99999"\n')
    await assert.rejects(
      setup([...base, '--out', bad]),
      (e) => isEventplaneError(e, 'bus.config') && e.message === `the listen port 99999 of ${bad} is not a port`,
    )
  })
})
