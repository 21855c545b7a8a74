import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { credsUserKey, jwtRevocations, natsSetupMain } from '@eventplane/bus-nats/nats-config'
import {
  OWN_PROCESS_GROUP,
  dieWithParent,
  findNatsServerBinary,
  reapOnExit,
  refusedWith,
} from '../../../packages/bus-nats/src/testing/index.ts'
import { exited, freePort, greets } from '../../../packages/bus-nats/src/testing/nats-process.ts'
import { eventually } from '../../../packages/bus-nats/test/fixtures.ts'

/**
 * What a re-run of `nats-setup` on `authDir` gives a server started afresh (an empty resolver dir, so it knows
 * `account` only from the config's preload): the config is written, `account`'s JWT in the auth dir claims every
 * `revoked` key, the new server refuses each, and then `check(url)` runs against it. The server and its temp dir
 * are gone afterwards.
 */
export async function checkSetupRerun(
  authDir: string,
  account: 'SYS' | 'EVENTPLANE',
  revoked: ReadonlyArray<readonly [string, Uint8Array]>,
  check: (url: string) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'eventplane-setup-rerun-'))
  let child: ChildProcess | undefined
  try {
    const port = await freePort()
    const conf = join(dir, 'nats.conf')
    const io = { stdout: { write: () => true }, stderr: { write: () => true } }
    const args = ['--auth-dir', authDir, '--store-dir', join(dir, 'js'), '--port', String(port)]
    assert.equal(await natsSetupMain([...args, '--out', conf, '--server-name', 'rerun'], io), 0)
    const preloaded = readFileSync(join(authDir, 'accounts', `${account}.jwt`), 'utf8').trim()
    const claimed = Object.keys(jwtRevocations(preloaded))
    for (const [what, c] of revoked) assert.ok(claimed.includes(await credsUserKey(c)), `${what} in ${account}.jwt`)
    child = spawn(...dieWithParent(findNatsServerBinary(), ['-c', conf]), { stdio: 'ignore', ...OWN_PROCESS_GROUP })
    reapOnExit(child)
    await eventually(() => greets(port, 'rerun'), 'the re-configured nats-server to listen')
    const url = `nats://127.0.0.1:${port}`
    for (const [what, c] of revoked) await refusedWith(url, c, what)
    await check(url)
  } finally {
    child?.kill('SIGKILL')
    if (child) await exited(child)
    rmSync(dir, { recursive: true, force: true })
  }
}
