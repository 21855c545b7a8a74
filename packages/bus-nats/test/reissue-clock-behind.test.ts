/**
 * Creds re-issued for the same user key on a clock behind the one that issued the JWT they replace (a host whose
 * clock is behind, another host, a clock set back): a revocation of the key is made as of the later of now and
 * the `iat` of its creds file, and nats-server refuses a user JWT only when the revocation's time is at or after
 * its `iat`. Re-issued with an `iat` before the JWT they replace, the creds would let a later revocation miss that
 * JWT; they are issued after it instead (`issuedAfter`). Each test pins the clock (`mock.timers`, Date only) two
 * seconds before the existing creds' `iat`, re-issues them as the auth dir does (nats-setup for a tier whose grants
 * changed, a signing-key rotation's re-sign), then rotates the user and checks against a real nats-server that the
 * creds of before the re-issue are refused.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, mock, test } from 'node:test'
import { parseCreds } from '@nats-io/jwt'
import type { NatsConnection } from '@nats-io/transport-node'
import { reissuedCreds, resignedCreds } from '../src/nats-config/claims.ts'
import {
  LOG_ACCOUNT,
  initAuthDir,
  loadAuthDir,
  rotateServiceUser,
  rotateSigningKey,
  serviceCredsFile,
  writeSecretFile,
} from '../src/nats-config/index.ts'
import { servicePermissions } from '../src/nats-config/permissions.ts'
import { userSigner } from '../src/nats-config/signing-keys.ts'
import { type TestNatsServer, connectsWith, refusedWith, startNatsServer } from '../src/testing/index.ts'
import { twoSecondsBefore } from './support/auth-dir-ops.ts'

const claimsOf = async (creds: Uint8Array) => (await parseCreds(creds)).uc

describe('creds re-issued for the same key on a clock behind are issued after the JWT they replace', () => {
  let server: TestNatsServer
  let system: NatsConnection
  before(async () => {
    server = await startNatsServer()
    system = await server.connect('system')
  })
  after(async () => {
    mock.timers.reset()
    await server?.stop()
  })

  test('nats-setup re-issuing a tier whose grants changed; a rotation then refuses the creds of before', async () => {
    const auth = loadAuthDir(server.authDir!)
    const file = serviceCredsFile(auth.dir, 'relay')
    // The relay's creds as an earlier release issued them (one grant less), the last JWT issued for its key.
    const { relay } = servicePermissions()
    const older = { ...relay, publish: { allow: relay.publish!.allow!.slice(1) } }
    const signer = userSigner(auth.dir, { account: LOG_ACCOUNT }, auth.log)
    const first = (await reissuedCreds(readFileSync(file), 'relay', auth.log, older, signer))!
    writeSecretFile(file, first)
    await connectsWith(server.url, first)
    const { sub, iat } = await claimsOf(first)

    await twoSecondsBefore(iat, () => initAuthDir(auth.dir))
    const reissued = await claimsOf(readFileSync(file))
    assert.equal(reissued.sub, sub, 'the same user key')
    assert.notDeepEqual(reissued.nats.pub, (await claimsOf(first)).nats.pub, 'the grants of now')
    assert.ok(reissued.iat > iat, `issued after the creds it replaces (${reissued.iat} > ${iat})`)

    await twoSecondsBefore(iat, () => rotateServiceUser(auth, system, 'relay'))
    await refusedWith(server.url, first, 'the relay creds issued before the re-issue')
    await connectsWith(server.url, readFileSync(file))
  })

  test("a signing-key rotation's re-sign; a rotation then refuses the creds of before", async () => {
    const auth = loadAuthDir(server.authDir!)
    const file = serviceCredsFile(auth.dir, 'gateway')
    // Issued by the log account's identity key (an auth dir of before signing keys, whose creds the server accepts
    // whatever signing keys the account lists): a signing-key rotation does not refuse them, only a revocation does.
    const first = await resignedCreds(readFileSync(file), auth.log, servicePermissions().gateway, auth.log)
    writeSecretFile(file, first)
    await connectsWith(server.url, first)
    const { sub, iat } = await claimsOf(first)

    const rotated = await twoSecondsBefore(iat, () =>
      rotateSigningKey(auth, () => server.connect('system'), { account: 'log' }),
    )
    const resigned = await claimsOf(readFileSync(file))
    assert.equal(resigned.sub, sub, 'the same user key')
    assert.equal(resigned.iss, rotated.key, 'signed by the new signing key')
    assert.ok(resigned.iat > iat, `issued after the creds it replaces (${resigned.iat} > ${iat})`)
    await connectsWith(server.url, first)

    await twoSecondsBefore(iat, () => rotateServiceUser(auth, system, 'gateway'))
    await refusedWith(server.url, first, 'the gateway creds issued before the re-sign')
    await connectsWith(server.url, readFileSync(file))
  })
})
