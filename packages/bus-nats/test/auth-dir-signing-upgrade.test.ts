/**
 * An auth dir made before signing keys, upgraded by running nats-setup again (initAuthDir): its account JWTs list
 * new signing keys, its creds files (issued by the account keys themselves) stay byte for byte and keep working,
 * before and after a restart with the re-generated config, and nothing is signed by a signing key the server has
 * not been pushed yet. The old state is made here from a fresh auth dir: every creds file re-issued by its
 * account's identity key, the signing keys removed, and account JWTs without them pushed.
 */
import assert from 'node:assert/strict'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { parseCreds } from '@nats-io/jwt'
import type { KeyPair } from '@nats-io/nkeys'
import { logAccountJwt, resignedCreds, systemAccountJwt, tenantAccountJwt } from '../src/nats-config/claims.ts'
import {
  LOG_ACCOUNT,
  SYSTEM_ACCOUNT,
  type SigningOwner,
  addTenant,
  connectTenantAdmin,
  initAuthDir,
  loadAuthDir,
  pushAccountJwt,
  readSigningKeys,
  rotateServiceUser,
  rotateSigningKey,
  serviceCredsFile,
  signingPushedFile,
  signingSeedFile,
  tenantCredsFile,
} from '../src/nats-config/index.ts'
import { SYSTEM_USER_PERMISSIONS } from '../src/nats-config/auth-dir.ts'
import { servicePermissions, tenantPermissions } from '../src/nats-config/permissions.ts'
import { jwtSigningKeys } from '../src/nats-config/revocations.ts'
import { activeRecord, tenantKey } from '../src/nats-config/tenants.ts'
import { type TestNatsServer, connectsWith, startNatsServer } from '../src/testing/index.ts'

const issuerOf = async (creds: Uint8Array) => (await parseCreds(creds)).uc.iss

describe('nats-setup over an auth dir made before signing keys', () => {
  let server: TestNatsServer
  let dir: string
  const read = (f: string) => readFileSync(f)
  const services = ['relay', 'gateway', 'controller', 'operator'] as const
  const files = () => [
    ...services.map((u) => serviceCredsFile(dir, u)),
    serviceCredsFile(dir, 'system'),
    tenantCredsFile(dir, 'acme'),
  ]

  /** Removes an account's signing keys from the auth dir, as before they existed. */
  const forget = (owner: SigningOwner) => {
    for (const which of ['current', 'next'] as const) rmSync(signingSeedFile(dir, owner, which), { force: true })
    rmSync(signingPushedFile(dir, owner), { force: true })
  }
  const reissueByIdentity = async (file: string, identity: KeyPair, permissions: object) =>
    writeFileSync(file, await resignedCreds(read(file), identity, permissions, identity), { mode: 0o600 })

  before(async () => {
    server = await startNatsServer({ tenants: ['acme'] })
    dir = server.authDir!
    const auth = loadAuthDir(dir)
    const acme = tenantKey(auth, 'acme')
    const perms = servicePermissions()
    for (const u of services) await reissueByIdentity(serviceCredsFile(dir, u), auth.log, perms[u])
    await reissueByIdentity(serviceCredsFile(dir, 'system'), auth.system, SYSTEM_USER_PERMISSIONS)
    const consumers = activeRecord(auth, 'acme')!.consumers
    await reissueByIdentity(tenantCredsFile(dir, 'acme'), acme, tenantPermissions('acme', consumers))
    for (const owner of [{ account: LOG_ACCOUNT }, { account: SYSTEM_ACCOUNT }, { tenant: 'acme' }] as const)
      forget(owner)
    const legacy = {
      [LOG_ACCOUNT]: await logAccountJwt(auth.log, auth.operator),
      [SYSTEM_ACCOUNT]: await systemAccountJwt(auth.system, auth.operator),
    }
    const admin = await connectTenantAdmin(auth, server.url)
    for (const [account, jwt] of Object.entries(legacy)) {
      writeFileSync(join(dir, 'accounts', `${account}.jwt`), `${jwt}\n`)
      await pushAccountJwt(admin.system, jwt)
    }
    const acmeJwt = tenantAccountJwt({
      tenant: 'acme',
      account: acme.getPublicKey(),
      consumers,
      operator: auth.operator,
      log: auth.log,
    })
    await pushAccountJwt(admin.system, await acmeJwt)
    await admin.close()
    for (const f of files()) await connectsWith(server.url, read(f))
  })
  after(async () => {
    await server?.stop()
  })

  test('the upgrade lists signing keys and keeps every creds file working, before and after a restart', async () => {
    const before = new Map(files().map((f) => [f, read(f)]))
    const auth = await initAuthDir(dir)
    for (const [f, bytes] of before) assert.deepEqual(read(f), bytes, `${f} unchanged`)
    const logSigning = readSigningKeys(dir, { account: LOG_ACCOUNT })
    assert.ok(logSigning.current, 'the log account has a signing key')
    assert.deepEqual(logSigning.pushed, [], 'not known to the server yet')
    assert.deepEqual(jwtSigningKeys(auth.logAccountJwt), [logSigning.current.getPublicKey()], 'listed in its JWT')
    for (const f of files()) await connectsWith(server.url, read(f))

    // Not pushed yet: a staged rotation (no push) issues by the account key, which the server knows.
    const staged = await rotateServiceUser(auth, undefined, 'controller', { keepOld: true })
    assert.equal(await issuerOf(read(staged.credsFile)), auth.log.getPublicKey())
    await connectsWith(server.url, read(staged.credsFile))

    await server.restart({ reconfigure: true })
    for (const f of files()) await connectsWith(server.url, read(f))
  })

  test('after the upgrade, keys rotate and tenant add move each account to its signing key', async () => {
    const auth = loadAuthDir(dir)
    const connectSystem = () => server.connect('system')
    for (const account of ['log', 'system'] as const) await rotateSigningKey(auth, connectSystem, { account })
    for (const u of [...services, 'system'] as const) {
      const owner = { account: u === 'system' ? SYSTEM_ACCOUNT : LOG_ACCOUNT } as const
      assert.equal(await issuerOf(read(serviceCredsFile(dir, u))), readSigningKeys(dir, owner).current!.getPublicKey())
      await connectsWith(server.url, read(serviceCredsFile(dir, u)))
    }
    // A tenant added before signing keys: a re-add pushes its new signing key; its creds stay until rotated.
    const acmeCreds = read(tenantCredsFile(dir, 'acme'))
    const admin = await connectTenantAdmin(auth, server.url)
    await addTenant(auth, admin, 'acme')
    await admin.close()
    assert.deepEqual(read(tenantCredsFile(dir, 'acme')), acmeCreds)
    await connectsWith(server.url, acmeCreds)
    const r = await rotateSigningKey(auth, connectSystem, { tenant: 'acme' })
    assert.equal(await issuerOf(read(tenantCredsFile(dir, 'acme'))), r.key)
    await connectsWith(server.url, read(tenantCredsFile(dir, 'acme')))
  })
})
