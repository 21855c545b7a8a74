/**
 * Account signing keys against a real nats-server in the account model: users are issued by their account's
 * signing key (listed in the account JWT, `issuer_account` naming the account), and `rotateSigningKey` replaces
 * that key live: every creds file of the account re-issued for the same user key, creds the old key signed
 * refused, a service reading its creds file on reconnect back with the new ones, the account's JetStream state
 * kept, and a rotation cut short leaving creds the server accepts.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { decode, parseCreds } from '@nats-io/jwt'
import type { NatsConnection } from '@nats-io/transport-node'
import {
  LOG_ACCOUNT,
  SYSTEM_ACCOUNT,
  loadAuthDir,
  readSigningKeys,
  rotateSigningKey,
  serviceCredsFile,
  tenantCredsFile,
} from '../src/nats-config/index.ts'
import { STREAM_NAME } from '../src/subjects.ts'
import { type TestNatsServer, connectsWith, refusedWith } from '../src/testing/index.ts'
import { eventually, serviceConnection, within } from './fixtures.ts'
import { startServerWithLogMessage } from './support/stream-server.ts'

const claimsOf = async (creds: Uint8Array) => (await parseCreds(creds)).uc
const signingKeysOf = (jwt: string) => decode<{ signing_keys?: string[] }>(jwt).nats.signing_keys ?? []

describe('account signing keys', () => {
  let server: TestNatsServer
  let dir: string
  const read = (f: string) => readFileSync(f)
  const connectSystem = () => server.connect('system')
  /** Whether acme reads its `acme_tail` consumer: its imports of the log account (activation tokens) hold. */
  const acmeReads = async (): Promise<string> => {
    const acme = await server.connect('acme')
    try {
      return await jetstream(acme, { timeout: 3000 })
        .consumers.get(STREAM_NAME, 'acme_tail')
        .then(
          () => 'read',
          (e: unknown) => String(e),
        )
    } finally {
      await acme.close()
    }
  }

  before(async () => {
    server = await startServerWithLogMessage(['acme'])
    dir = server.authDir!
  })
  after(async () => {
    await server?.stop()
  })

  test("a fresh auth dir's users are issued by their account's signing key, which its JWT lists", async () => {
    const auth = loadAuthDir(dir)
    const cases = [
      { account: auth.log.getPublicKey(), owner: { account: LOG_ACCOUNT }, file: serviceCredsFile(dir, 'relay') },
      {
        account: auth.system.getPublicKey(),
        owner: { account: SYSTEM_ACCOUNT },
        file: serviceCredsFile(dir, 'system'),
      },
      { account: undefined, owner: { tenant: 'acme' }, file: tenantCredsFile(dir, 'acme') },
    ] as const
    for (const c of cases) {
      const uc = await claimsOf(read(c.file))
      const signing = readSigningKeys(dir, c.owner).current!.getPublicKey()
      assert.equal(uc.iss, signing, `${c.file}: issued by the signing key`)
      if (c.account !== undefined) assert.equal(uc.nats.issuer_account, c.account, 'issuer_account: the account')
      await connectsWith(server.url, read(c.file))
    }
    assert.deepEqual(signingKeysOf(auth.logAccountJwt), [
      readSigningKeys(dir, { account: LOG_ACCOUNT }).current!.getPublicKey(),
    ])
    assert.deepEqual(signingKeysOf(auth.systemAccountJwt), [
      readSigningKeys(dir, { account: SYSTEM_ACCOUNT }).current!.getPublicKey(),
    ])
  })

  test('keys rotate log: the old key is refused, a service reconnects with its re-issued creds, the stream stays', async () => {
    const auth = loadAuthDir(dir)
    const file = serviceCredsFile(dir, 'relay')
    const old = read(file)
    const oldGateway = read(serviceCredsFile(dir, 'gateway'))
    const { nc, statuses } = await serviceConnection(server.url, file)

    try {
      // Before each push (each opens its system connection): whether acme reads its consumer, through its imports.
      const steps: string[] = []
      const connectChecking = async () => {
        steps.push(await acmeReads())
        return connectSystem()
      }
      const r = await rotateSigningKey(auth, connectChecking, { account: 'log' })
      assert.equal(r.account, LOG_ACCOUNT)
      assert.equal(r.reissued.length, 4, 'relay, gateway, controller, operator')
      await refusedWith(server.url, old, 'relay creds the old signing key issued')
      await refusedWith(server.url, oldGateway, 'gateway creds the old signing key issued')
      await eventually(() => statuses.includes('reconnect'), 'the relay connection to reconnect')
      assert.equal(nc.isClosed(), false, `not closed: ${statuses.join(',')}`)
      // The account's JetStream state belongs to its identity key: the stream and its message are still there.
      const jsm = await jetstreamManager(nc)
      assert.equal((await within(jsm.streams.info(STREAM_NAME), 5000, 'stream info')).state.messages, 1)
      const now = await claimsOf(read(file))
      assert.equal(now.sub, (await claimsOf(old)).sub, 'the same user key')
      assert.equal(now.iss, r.key, 'issued by the new signing key')
      assert.notEqual(r.key, r.removed)
      assert.deepEqual(signingKeysOf(readFileSync(`${dir}/accounts/EVENTPLANE.jwt`, 'utf8').trim()), [r.key])
      for (const f of r.reissued) await connectsWith(server.url, read(f))
      // acme's imports hold activation tokens the log account's signing key signed: re-signed by the new key and
      // pushed before the old one was dropped, they still let it read its consumer, at each step.
      assert.equal(await acmeReads(), 'read', "acme's imports still hold")
      assert.deepEqual(steps, ['read', 'read', 'read'], "acme's imports held before each of the rotation's pushes")
    } finally {
      await nc.close()
    }
  })

  test('keys rotate tenant: its re-issued creds connect, the old ones are refused, the other accounts untouched', async () => {
    const auth = loadAuthDir(dir)
    const file = tenantCredsFile(dir, 'acme')
    const old = read(file)
    const relay = read(serviceCredsFile(dir, 'relay'))
    const r = await rotateSigningKey(auth, connectSystem, { tenant: 'acme' })
    assert.deepEqual(r.reissued, [file])
    assert.equal((await claimsOf(read(file))).iss, r.key)
    await refusedWith(server.url, old, 'tenant creds the old signing key issued')
    const acme = await server.connect('acme')
    await acme.flush()
    await connectsWith(server.url, relay)
    await assert.rejects(rotateSigningKey(auth, connectSystem, { tenant: 'nobody' }), (e) =>
      isEventplaneError(e, 'bus.unknown_tenant'),
    )
  })

  test('keys rotate system: the last push goes through the re-issued creds; the old ones are refused', async () => {
    const auth = loadAuthDir(dir)
    const file = serviceCredsFile(dir, 'system')
    const old = read(file)
    const pushedWith: string[] = []
    const r = await rotateSigningKey(
      auth,
      async () => {
        pushedWith.push((await claimsOf(read(file))).iss)
        return server.connect('system')
      },
      { account: 'system' },
    )
    assert.deepEqual(pushedWith, [r.removed, r.key], 'first through the old creds, then through the new ones')
    await refusedWith(server.url, old, 'system creds the old signing key issued')
    await connectsWith(server.url, read(file))
  })

  test('cut short once the creds are re-issued (the last push fails): every creds file connects; run again, the old key is gone', async () => {
    const auth = loadAuthDir(dir)
    const files = ['relay', 'gateway', 'controller', 'operator'].map((u) => serviceCredsFile(dir, u as 'relay'))
    const old = read(files[0]!)
    const oldIssuer = (await claimsOf(old)).iss
    // The push that comes after the creds files hold the new key's JWTs fails, as a crash there would leave it.
    const failOnceReissued = async (): Promise<NatsConnection> => {
      if ((await claimsOf(read(files[0]!))).iss !== oldIssuer) throw new Error('cut short')
      return server.connect('system')
    }
    await assert.rejects(rotateSigningKey(auth, failOnceReissued, { account: 'log' }), /cut short/)
    for (const f of files) {
      assert.notEqual((await claimsOf(read(f))).iss, oldIssuer, `${f}: re-issued`)
      await connectsWith(server.url, read(f))
    }
    const again = await rotateSigningKey(auth, connectSystem, { account: 'log' })
    await refusedWith(server.url, old, 'creds the first old key issued')
    for (const f of again.reissued) await connectsWith(server.url, read(f))
  })
})
