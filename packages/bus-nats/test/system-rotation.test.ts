/**
 * Rotating the system account's user (`rotateSystemUser`, who pushes every account JWT) against a real nats-server
 * in the account model: the push goes through a connection made with the new creds, the old key is refused, and at
 * no step, a failed push or a rotation cut short included, is the operator left without a system creds file the
 * server accepts.
 */
import assert from 'node:assert/strict'
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { Unavailable, isEventplaneError } from '@eventplane/core'
import { systemAccountJwt } from '../src/nats-config/claims.ts'
import { jwtSigningKeys } from '../src/nats-config/revocations.ts'
import {
  SYSTEM_ACCOUNT,
  credsUserKey,
  initAuthDir,
  jwtRevocations,
  loadAuthDir,
  readRevocations,
  revocationsFile,
  revokeStagedSystemKeys,
  rotateSystemUser,
  serviceCredsFile,
} from '../src/nats-config/index.ts'
import { type TestNatsServer, connectsWith, refusedWith, startNatsServer } from '../src/testing/index.ts'
import { within } from './fixtures.ts'
import { waitsForHeldLock } from './support/held-lock.ts'

describe('rotateSystemUser', () => {
  let server: TestNatsServer
  let file: string
  const creds = () => readFileSync(file)
  const sysJwt = () => readFileSync(join(server.authDir!, 'accounts', `${SYSTEM_ACCOUNT}.jwt`), 'utf8').trim()
  /** Connects as `system` with its creds file as it is now, noting the key it holds. */
  const connecting = (keys: string[]) => async () => {
    keys.push(await credsUserKey(creds()))
    return server.connect('system')
  }
  /** A directory where a write of `path` puts its temp file: that write fails (EISDIR), as if cut short there. */
  const blockWrite = (path: string) => mkdirSync(`${path}.${process.pid}.tmp`)
  const unblockWrite = (path: string) => rmSync(`${path}.${process.pid}.tmp`, { recursive: true, force: true })

  before(async () => {
    server = await startNatsServer()
    file = serviceCredsFile(server.authDir!, 'system')
  })
  after(async () => {
    await server?.stop()
  })

  test('pushes through a connection made with the new creds; the old key is refused, the new one pushes', async () => {
    const auth = loadAuthDir(server.authDir!)
    const old = creds()
    // Retrying every 100 ms, not the client's default 2 s: it closes at its second refused reconnect, and two
    // default delays were most of the 5 s bound.
    const live = await server.connect('system', { maxReconnectAttempts: 5, reconnectTimeWait: 100 })
    const closed = live.closed()
    const connectedWith: string[] = []
    const r = await rotateSystemUser(auth, connecting(connectedWith))
    assert.deepEqual(r.revoked, [await credsUserKey(old)])
    assert.equal(r.key, await credsUserKey(creds()))
    assert.deepEqual(connectedWith, [r.key], 'the push went through the new key')
    assert.equal(statSync(file).mode & 0o777, 0o600, 'the creds file is private')
    const why = await within(closed, 5000, 'the live connection of the old key to be closed')
    assert.ok(why instanceof Error, `closed by the server: ${String(why)}`)
    await refusedWith(server.url, old, 'the old system key')
    assert.deepEqual(Object.keys(jwtRevocations(sysJwt())), r.revoked, 'accounts/SYS.jwt carries the revocation')
    assert.deepEqual(Object.keys(readRevocations(auth.dir, SYSTEM_ACCOUNT).revoked), r.revoked)
    // The new creds push claims: a tenant added through them.
    await server.addTenant('acme')
    await connectsWith(server.url, readFileSync(server.credentials.acme!.creds))
  })

  test('a push that fails leaves a working creds file and the recorded revocation; revokeStagedSystemKeys pushes it', async () => {
    const auth = loadAuthDir(server.authDir!)
    const old = creds()
    const unreachable = async () => {
      throw new Unavailable('bus.unavailable', 'cannot connect to NATS')
    }
    await assert.rejects(
      rotateSystemUser(auth, unreachable),
      (e: unknown) =>
        isEventplaneError(e, 'bus.unavailable') && /not pushed .*evtctl creds revoke-old system$/.test(e.message),
    )
    const oldKey = await credsUserKey(old)
    assert.notEqual(await credsUserKey(creds()), oldKey, 'the new creds are written')
    assert.ok(readRevocations(auth.dir, SYSTEM_ACCOUNT).revoked[oldKey], 'the revocation is recorded')
    assert.ok(jwtRevocations(sysJwt())[oldKey], 'and in accounts/SYS.jwt')
    await connectsWith(server.url, old)
    await connectsWith(server.url, creds())
    const connectedWith: string[] = []
    assert.deepEqual(await revokeStagedSystemKeys(auth, connecting(connectedWith)), [], 'nothing was staged')
    assert.deepEqual(connectedWith, [await credsUserKey(creds())])
    await refusedWith(server.url, old, 'the old system key, once pushed')
    await connectsWith(server.url, creds())
  })

  test('a rotation that cannot record the old key writes no new creds', async () => {
    const auth = loadAuthDir(server.authDir!)
    const old = creds()
    const list = revocationsFile(auth.dir, SYSTEM_ACCOUNT)
    blockWrite(list)
    try {
      await assert.rejects(rotateSystemUser(auth, connecting([])), /EISDIR/)
    } finally {
      unblockWrite(list)
    }
    assert.deepEqual(creds(), old, 'the creds file is as it was')
    await connectsWith(server.url, creds())
  })

  test('cut short before the new creds are written: the old key stays staged and is never revoked while in use', async () => {
    const auth = loadAuthDir(server.authDir!)
    const current = creds()
    const key = await credsUserKey(current)
    blockWrite(file)
    try {
      await assert.rejects(rotateSystemUser(auth, connecting([])), /EISDIR/)
    } finally {
      unblockWrite(file)
    }
    assert.deepEqual(creds(), current, 'the creds file is as it was')
    assert.ok(readRevocations(auth.dir, SYSTEM_ACCOUNT).staged[key], 'the key in use is recorded as staged')
    assert.deepEqual(await revokeStagedSystemKeys(auth, connecting([])), [], 'the key in use is not revoked')
    await connectsWith(server.url, creds())
    await server.addTenant('beta')
  })

  test('waits while another holds the auth dir lock: nothing written, then it rotates', async () => {
    const auth = loadAuthDir(server.authDir!)
    const old = creds()
    await waitsForHeldLock(
      auth,
      (held) => rotateSystemUser(held, connecting([])),
      () => assert.deepEqual(creds(), old, 'nothing written while it waits'),
    )
    await refusedWith(server.url, old, 'the old system key')
  })

  test('initAuthDir rebuilds a system account JWT that lacks a revocation the list holds (a write cut short)', async () => {
    const auth = loadAuthDir(server.authDir!)
    // Its own revocation: the list holds at least one key, whichever tests ran before.
    await rotateSystemUser(auth, connecting([]))
    const listed = Object.keys(readRevocations(auth.dir, SYSTEM_ACCOUNT).revoked)
    assert.ok(listed.length > 0, 'the rotation revoked a key')
    // The same signing keys, no revocations: the revocations alone make it stale.
    const signing = jwtSigningKeys(sysJwt())
    assert.ok(signing.length > 0)
    writeFileSync(
      join(auth.dir, 'accounts', `${SYSTEM_ACCOUNT}.jwt`),
      `${await systemAccountJwt(auth.system, auth.operator, undefined, signing)}\n`,
    )
    const again = await initAuthDir(auth.dir)
    assert.deepEqual(Object.keys(jwtRevocations(again.systemAccountJwt)).sort(), listed.sort())
    assert.deepEqual(Object.keys(jwtRevocations(sysJwt())).sort(), listed.sort())
  })
})
