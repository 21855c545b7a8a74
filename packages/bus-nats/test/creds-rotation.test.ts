/**
 * Rotating a service user's creds (`rotateServiceUser`) against a real nats-server in the account model, and a
 * service connection (`natsAuth`) that reads its creds file on each reconnect: rotated on its host, it is
 * disconnected by the revocation and comes back with the new key instead of being closed for good.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, mock, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { parseCreds } from '@nats-io/jwt'
import type { NatsConnection } from '@nats-io/transport-node'
import { credsFileAuthenticator, natsAuth } from '../src/nats-auth.ts'
import { decodeJwt } from '../src/nkeys.ts'
import { logAccountJwt, resignedCreds } from '../src/nats-config/claims.ts'
import { servicePermissions } from '../src/nats-config/permissions.ts'
import { jwtSigningKeys } from '../src/nats-config/revocations.ts'
import { ensureNextSigningKey, userSigner } from '../src/nats-config/signing-keys.ts'
import {
  LOG_ACCOUNT,
  initAuthDir,
  jwtRevocations,
  loadAuthDir,
  readRevocations,
  revokeLogUserKeys,
  revokeStagedKeys,
  rotateServiceUser,
  rotateTenantUser,
  serviceCredsFile,
  tenantCredsFile,
  authDirLockPath,
  writeSecretFile,
} from '../src/nats-config/index.ts'
import { type TestNatsServer, connectsWith, refusedWith, startNatsServer } from '../src/testing/index.ts'
import { eventually, serviceConnection, within } from './fixtures.ts'
import { waitsForHeldLock } from './support/held-lock.ts'

const keyOf = async (creds: Uint8Array) => (await parseCreds(creds)).uc.sub

describe('credsFileAuthenticator', () => {
  let server: TestNatsServer
  before(async () => {
    server = await startNatsServer()
  })
  after(async () => {
    await server?.stop()
  })

  test('reads the file once per authentication: the JWT and the signing key come from the same read', async () => {
    const auth = loadAuthDir(server.authDir!)
    const relay = readFileSync(serviceCredsFile(auth.dir, 'relay'))
    const gateway = readFileSync(serviceCredsFile(auth.dir, 'gateway'))
    // A file renamed over between two reads: each read sees the other user's creds.
    let reads = 0
    const flipping = () => (reads++ % 2 === 0 ? relay : gateway)
    const authenticate = credsFileAuthenticator('/rotating.creds', flipping)
    for (let i = 0; i < 4; i++) {
      const before = reads
      const { jwt, nkey } = authenticate('nonce') as { jwt: string; nkey: string }
      assert.equal(reads - before, 1, 'one read per authentication')
      const sub = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()).sub as string
      assert.equal(nkey, sub, 'the nkey that signs is the JWT subject')
    }
  })

  test('keeps the last good bytes while the file is unreadable or garbage; startup fails with bus.config', async () => {
    const file = `${server.authDir}/copy.creds`
    const relay = readFileSync(serviceCredsFile(server.authDir!, 'relay'))
    writeFileSync(file, relay, { mode: 0o600 })
    const authenticate = credsFileAuthenticator(file)
    rmSync(file)
    assert.equal((authenticate('n') as { nkey: string }).nkey, await keyOf(relay), 'gone: the last good key')
    writeFileSync(file, 'half a file')
    assert.equal((authenticate('n') as { nkey: string }).nkey, await keyOf(relay), 'garbage: the last good key')
    // Rotated: the new file read is the last good one from then on, not the first read.
    const gateway = readFileSync(serviceCredsFile(server.authDir!, 'gateway'))
    writeFileSync(file, gateway)
    assert.equal((authenticate('n') as { nkey: string }).nkey, await keyOf(gateway), 'rotated: the new key')
    writeFileSync(file, 'half a file')
    assert.equal((authenticate('n') as { nkey: string }).nkey, await keyOf(gateway), 'garbage after the rotation')
    assert.throws(
      () => natsAuth({ natsCreds: file }),
      (e: unknown) => isEventplaneError(e, 'bus.config') && e.message.includes(file),
    )
    rmSync(file)
  })
})

describe('rotateServiceUser', () => {
  let server: TestNatsServer
  let system: NatsConnection
  before(async () => {
    server = await startNatsServer()
    system = await server.connect('system')
  })
  after(async () => {
    await server?.stop()
  })

  test('a service connection reading its creds file reconnects with the rotated creds; the old key is refused', async () => {
    const auth = loadAuthDir(server.authDir!)
    const file = serviceCredsFile(auth.dir, 'relay')
    const old = readFileSync(file)
    const { nc, statuses } = await serviceConnection(server.url, file)
    const other = await server.connect('gateway')

    const rotated = await rotateServiceUser(auth, system, 'relay')
    assert.deepEqual(rotated.revoked, [await keyOf(old)])
    assert.equal(rotated.key, await keyOf(readFileSync(file)))
    await eventually(() => statuses.includes('reconnect'), 'the relay connection to reconnect')
    assert.equal(nc.isClosed(), false, `not closed: ${statuses.join(',')}`)
    await within(nc.flush(), 5000, 'a flush on the reconnected connection')
    await refusedWith(server.url, old, 'the old relay key')
    await connectsWith(server.url, readFileSync(file))
    await within(other.flush(), 5000, 'the gateway connection, untouched')
    assert.equal(other.isClosed(), false)
    assert.deepEqual(Object.keys(readRevocations(auth.dir, LOG_ACCOUNT).revoked), [await keyOf(old)])
    // Again: nats.js reads the revocation's "User Authentication Revoked" as a protocol error, not an auth
    // error, so a second rotation of a running service is no second auth error in a row (which would end it).
    const second = readFileSync(file)
    await rotateServiceUser(auth, system, 'relay')
    await eventually(() => statuses.filter((s) => s === 'reconnect').length === 2, 'a second reconnect')
    await within(nc.flush(), 5000, 'a flush after the second rotation')
    await refusedWith(server.url, second, 'the second relay key')
    await nc.close()
  })

  test('a push that fails leaves the new creds and the recorded revocation; revokeStagedKeys pushes it', async () => {
    const auth = loadAuthDir(server.authDir!)
    const file = serviceCredsFile(auth.dir, 'controller')
    const old = readFileSync(file)
    const gone = await server.connect('system')
    await gone.close()
    await assert.rejects(
      rotateServiceUser(auth, gone, 'controller'),
      (e: unknown) =>
        isEventplaneError(e, 'bus.unavailable') && /not pushed: .*evtctl creds revoke-old$/.test(e.message),
    )
    assert.notEqual(await keyOf(readFileSync(file)), await keyOf(old), 'the new creds are written')
    assert.ok(readRevocations(auth.dir, LOG_ACCOUNT).revoked[await keyOf(old)], 'the revocation is recorded')
    await connectsWith(server.url, old)
    assert.deepEqual(await revokeStagedKeys(auth, system), [], 'nothing was staged')
    await refusedWith(server.url, old, 'the old controller key, once pushed')
    await connectsWith(server.url, readFileSync(file))
  })

  test('a tenant rotation whose push fails says so; tenant add re-applies the account with the revocation', async () => {
    await server.addTenant('acme')
    const auth = loadAuthDir(server.authDir!)
    const file = tenantCredsFile(auth.dir, 'acme')
    const old = readFileSync(file)
    const gone = await server.connect('system')
    await gone.close()
    await assert.rejects(
      rotateTenantUser(auth, { system: gone, operator: gone, close: async () => {} }, 'acme'),
      (e: unknown) =>
        isEventplaneError(e, 'bus.unavailable') && /not pushed: .*evtctl tenant add acme$/.test(e.message),
    )
    await connectsWith(server.url, old)
    await server.addTenant('acme')
    await refusedWith(server.url, old, "acme's old key, once re-applied")
  })

  test('a rotation waits while another holds the auth dir lock, and takes over a lock whose holder is gone', async () => {
    const auth = loadAuthDir(server.authDir!)
    const file = serviceCredsFile(auth.dir, 'gateway')
    const old = readFileSync(file)
    await waitsForHeldLock(
      auth,
      (held) => rotateServiceUser(held, system, 'gateway'),
      () => assert.deepEqual(readFileSync(file), old, 'nothing written while it waits'),
    )
    await refusedWith(server.url, old, 'the old gateway key')

    // A holder that died (its pid no longer runs) leaves the lock behind: the next one takes it over.
    const dead = spawnSync(process.execPath, ['-e', '']).pid
    mkdirSync(authDirLockPath(auth.dir))
    writeFileSync(join(authDirLockPath(auth.dir), 'pid'), `${dead}\n`)
    const second = readFileSync(file)
    try {
      await within(rotateServiceUser(auth, system, 'gateway'), 10_000, 'a rotation past a stale lock')
    } finally {
      rmSync(authDirLockPath(auth.dir), { recursive: true, force: true })
    }
    await refusedWith(server.url, second, 'the second gateway key')
  })

  test('initAuthDir rebuilds a log account JWT that lacks a revocation the list holds (a write cut short)', async () => {
    const auth = loadAuthDir(server.authDir!)
    // Its own revocation: the list holds at least one key, whichever tests ran before.
    await rotateServiceUser(auth, system, 'controller')
    const listed = Object.keys(readRevocations(auth.dir, LOG_ACCOUNT).revoked)
    assert.ok(listed.length > 0, 'the rotation revoked a key')
    const file = `${auth.dir}/accounts/EVENTPLANE.jwt`
    // The same signing keys, no revocations: the revocations alone make it stale.
    const signing = jwtSigningKeys(readFileSync(file, 'utf8').trim())
    assert.ok(signing.length > 0)
    writeFileSync(file, `${await logAccountJwt(auth.log, auth.operator, undefined, signing)}\n`)
    const again = await initAuthDir(auth.dir)
    assert.deepEqual(Object.keys(jwtRevocations(again.logAccountJwt)), listed)
    assert.deepEqual(Object.keys(jwtRevocations(readFileSync(file, 'utf8').trim())), listed)
  })
})

describe('an account JWT written within the second of the one the config preloads', () => {
  let server: TestNatsServer
  before(async () => {
    server = await startNatsServer()
  })
  after(async () => {
    mock.timers.reset()
    await server?.stop()
  })

  test('is issued after it, so its revocation survives a restart with that config', async () => {
    const auth = loadAuthDir(server.authDir!)
    const preloaded = decodeJwt(auth.logAccountJwt).iat
    const file = serviceCredsFile(auth.dir, 'relay')
    // The relay creds issued a second after the preloaded log account JWT, as nats-setup on a slow machine issues
    // them (seen in a CI run): the revocation below, made on a clock in the preloaded JWT's second, is behind their
    // issue and must cover it all the same (it is made as of their iat).
    mock.timers.enable({ apis: ['Date'], now: (preloaded + 1) * 1000 })
    try {
      const signer = userSigner(auth.dir, { account: LOG_ACCOUNT }, auth.log)
      const relay = servicePermissions().relay
      writeSecretFile(file, await resignedCreds(readFileSync(file), auth.log, relay, signer))
    } finally {
      mock.timers.reset()
    }
    const old = readFileSync(file)
    // At or after it: re-issued creds are issued after the JWT they replace (issuedAfter), which nats-setup may
    // itself have issued a second after the preloaded JWT.
    assert.ok((await parseCreds(old)).uc.iat >= preloaded + 1, 'the relay creds issued after the preloaded JWT')
    await connectsWith(server.url, old)
    const system = await server.connect('system')
    // The clock in the second the config's log account JWT was issued in: what a fast rotation after
    // nats-setup, or a host whose clock is behind, writes.
    mock.timers.enable({ apis: ['Date'], now: preloaded * 1000 + 500 })
    try {
      await rotateServiceUser(auth, system, 'relay')
    } finally {
      mock.timers.reset()
    }
    const written = decodeJwt(readFileSync(join(auth.dir, 'accounts', `${LOG_ACCOUNT}.jwt`), 'utf8').trim())
    assert.equal(written.iat, preloaded + 1, 'issued one second after the preloaded JWT')
    await refusedWith(server.url, old, 'the old relay key, before the restart')
    // The config still preloads the JWT of before the rotation: nats-server keeps the one it stored only
    // when the preloaded one was issued before it.
    await server.restart()
    await refusedWith(server.url, old, 'the old relay key, after a restart with the config of before')
    await connectsWith(server.url, readFileSync(serviceCredsFile(auth.dir, 'relay')))
  })
})

describe('an account JWT nats-setup writes anew on a host whose clock is behind', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ep-clock-behind-'))
  after(() => {
    mock.timers.reset()
    rmSync(dir, { recursive: true, force: true })
  })

  test('is issued after the one it replaces, which the server may have stored', async () => {
    const auth = await initAuthDir(dir)
    const before = decodeJwt(auth.logAccountJwt).iat
    // A rotation's new signing key: the log account's JWT no longer lists its keys, nats-setup writes it anew.
    ensureNextSigningKey(dir, { account: LOG_ACCOUNT })
    mock.timers.enable({ apis: ['Date'], now: (before - 3600) * 1000 })
    try {
      const again = await initAuthDir(dir)
      assert.notEqual(again.logAccountJwt, auth.logAccountJwt, 'written anew')
      assert.equal(decodeJwt(again.logAccountJwt).iat, before + 1, 'issued one second after the one it replaces')
    } finally {
      mock.timers.reset()
    }
  })
})

describe('revokeServiceUsers (the test server helper)', () => {
  let server: TestNatsServer
  before(async () => {
    server = await startNatsServer()
  })
  after(async () => {
    await server?.stop()
  })

  test('a second call keeps the users the first revoked (it merges into the auth dir list)', async () => {
    const creds = (user: 'controller' | 'gateway' | 'relay') => readFileSync(serviceCredsFile(server.authDir!, user))
    const controller = creds('controller')
    await server.revokeServiceUsers(['controller'])
    await refusedWith(server.url, controller, 'controller')
    await server.revokeServiceUsers(['gateway'])
    await refusedWith(server.url, controller, 'controller, after gateway was revoked')
    await refusedWith(server.url, creds('gateway'), 'gateway')
    await connectsWith(server.url, creds('relay'))
  })

  test('a key revoked again by a host whose clock is an hour behind stays revoked: the later time is kept', async () => {
    const auth = loadAuthDir(server.authDir!)
    const creds = readFileSync(serviceCredsFile(auth.dir, 'relay'))
    const key = await keyOf(creds)
    const system = await server.connect('system')
    await revokeLogUserKeys(auth, system, [{ key, user: 'relay' }])
    await refusedWith(server.url, creds, 'relay')
    const at = readRevocations(auth.dir, LOG_ACCOUNT).revoked[key]!.at
    // Its creds were issued seconds ago: a revocation as of an hour ago would let them in again.
    mock.timers.enable({ apis: ['Date'], now: Date.now() - 3_600_000 })
    try {
      await revokeLogUserKeys(auth, system, [{ key, user: 'relay' }])
    } finally {
      mock.timers.reset()
    }
    assert.equal(readRevocations(auth.dir, LOG_ACCOUNT).revoked[key]!.at, at)
    await refusedWith(server.url, creds, 'relay, after a second revocation an hour behind')
  })
})
