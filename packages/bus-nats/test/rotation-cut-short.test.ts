/**
 * A service user's rotation (`rotateServiceUser`) cut short between its writes, against a real nats-server: the old
 * key is listed as staged before the new creds replace it, so no replaced key is left valid and unlisted, and
 * `revokeStagedKeys` never revokes the key a creds file still holds.
 */
import assert from 'node:assert/strict'
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import type { NatsConnection } from '@nats-io/transport-node'
import {
  LOG_ACCOUNT,
  credsUserKey,
  loadAuthDir,
  readRevocations,
  revocationsFile,
  revokeStagedKeys,
  rotateServiceUser,
  serviceCredsFile,
} from '../src/nats-config/index.ts'
import { type TestNatsServer, connectsWith, startNatsServer } from '../src/testing/index.ts'

describe('rotateServiceUser cut short', () => {
  let server: TestNatsServer
  let system: NatsConnection
  /** A directory where a write of `path` puts its temp file: that write fails (EISDIR), as if cut short there. */
  const blocked = async (path: string, fn: () => Promise<unknown>) => {
    mkdirSync(`${path}.${process.pid}.tmp`)
    try {
      await assert.rejects(fn(), /EISDIR/)
    } finally {
      rmSync(`${path}.${process.pid}.tmp`, { recursive: true, force: true })
    }
  }

  before(async () => {
    server = await startNatsServer()
    system = await server.connect('system')
  })
  after(async () => {
    await server?.stop()
  })

  test('a rotation that cannot list the old key as staged writes no new creds', async () => {
    const auth = loadAuthDir(server.authDir!)
    const file = serviceCredsFile(auth.dir, 'relay')
    const old = readFileSync(file)
    await blocked(revocationsFile(auth.dir, LOG_ACCOUNT), () => rotateServiceUser(auth, system, 'relay'))
    assert.deepEqual(readFileSync(file), old, 'the creds file is as it was')
    await connectsWith(server.url, readFileSync(file))
  })

  test('cut short before the new creds are written: the key in use stays staged, and revoke-old skips it', async () => {
    const auth = loadAuthDir(server.authDir!)
    const file = serviceCredsFile(auth.dir, 'gateway')
    const current = readFileSync(file)
    await blocked(file, () => rotateServiceUser(auth, system, 'gateway'))
    assert.deepEqual(readFileSync(file), current, 'the creds file is as it was')
    const key = await credsUserKey(current)
    assert.equal(readRevocations(auth.dir, LOG_ACCOUNT).staged[key]?.user, 'gateway', 'the key in use is staged')
    assert.deepEqual(await revokeStagedKeys(auth, system), [], 'the key in use is not revoked')
    await connectsWith(server.url, readFileSync(file))
  })
})
