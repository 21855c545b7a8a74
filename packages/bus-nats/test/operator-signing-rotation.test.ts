/**
 * The operator's signing key against a real nats-server, restarted as an operator would: account JWTs are signed
 * by it, and `rotateOperatorSigningKey` replaces it in two steps, each followed by a restart with the config
 * re-generated from the auth dir. Across both restarts every account keeps working (services, a tenant, JetStream
 * state), a revoked tenant stays refused, and after the second one the server refuses what the old key signs.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { jetstreamManager } from '@nats-io/jetstream'
import { decode } from '@nats-io/jwt'
import { fromSeed } from '@nats-io/nkeys'
import { revokedTenantAccountJwt } from '../src/nats-config/claims.ts'
import {
  LOG_ACCOUNT,
  SYSTEM_ACCOUNT,
  loadAuthDir,
  moveIdentitySeedsOffline,
  pushAccountJwt,
  readSigningKeys,
  rotateOperatorSigningKey,
  serviceCredsFile,
  signingSeedFile,
  tenantCredsFile,
} from '../src/nats-config/index.ts'
import { jwtSigningKeys } from '../src/nats-config/revocations.ts'
import { STREAM_NAME } from '../src/subjects.ts'
import { type TestNatsServer, connectsWith, refusedWith } from '../src/testing/index.ts'
import { startServerWithLogMessage } from './support/stream-server.ts'

const issuerOf = (jwt: string) => decode(jwt).iss

describe('the operator signing key', () => {
  let server: TestNatsServer
  let dir: string
  const read = (f: string) => readFileSync(f)
  const accountJwt = (account: string) => readFileSync(join(dir, 'accounts', `${account}.jwt`), 'utf8').trim()
  const operatorSigning = () => readSigningKeys(dir, { operator: true })
  const connectSystem = () => server.connect('system')
  /** Every account still works: the services, system (a push), the tenant, and the log stream's message. */
  const everyAccountWorks = async (what: string) => {
    for (const f of [serviceCredsFile(dir, 'relay'), serviceCredsFile(dir, 'system'), tenantCredsFile(dir, 'acme')])
      await connectsWith(server.url, read(f))
    const operator = await server.connect('operator', { maxReconnectAttempts: 0 })
    const info = await (await jetstreamManager(operator)).streams.info(STREAM_NAME)
    assert.equal(info.state.messages, 1, `${what}: the stream keeps its message`)
    await operator.close()
  }

  before(async () => {
    server = await startServerWithLogMessage(['acme', 'globex'])
    dir = server.authDir!
  })
  after(async () => {
    await server?.stop()
  })

  test("a fresh auth dir's account JWTs are signed by the operator signing key, which operator.jwt lists", async () => {
    const auth = loadAuthDir(dir)
    const key = operatorSigning().current!.getPublicKey()
    assert.deepEqual(jwtSigningKeys(auth.operatorJwt), [key])
    assert.equal(issuerOf(accountJwt(SYSTEM_ACCOUNT)), key)
    assert.equal(issuerOf(accountJwt(LOG_ACCOUNT)), key)
    await everyAccountWorks('fresh')
  })

  test('rotated in two steps with a restart after each: every account works throughout; the old key is refused', async () => {
    const globex = read(tenantCredsFile(dir, 'globex'))
    await server.revokeTenant('globex')
    const auth = loadAuthDir(dir)
    const oldKey = fromSeed(
      new TextEncoder().encode(readFileSync(signingSeedFile(dir, { operator: true }), 'utf8').trim()),
    )

    const staged = await rotateOperatorSigningKey(auth, connectSystem)
    assert.equal(staged.step, 'staged')
    assert.deepEqual(jwtSigningKeys(loadAuthDir(dir).operatorJwt).sort(), [oldKey.getPublicKey(), staged.key].sort())
    // Before the restart the server does not trust the new key: the second step fails and nothing moves.
    // The system account's JWT first (always loaded: the JWT it applies is pushed back), and the message says what
    // to do: run nats-setup again and restart with the config it writes (evtctl writes no config).
    await assert.rejects(
      rotateOperatorSigningKey(loadAuthDir(dir), connectSystem),
      (e) =>
        isEventplaneError(e, 'bus.jwt_not_applied') &&
        e.message.startsWith(`operator signing key rotation: ${SYSTEM_ACCOUNT}'s account JWT was not applied`) &&
        e.message.includes(
          'run nats-setup again and restart it with the config it writes, then run the rotation again',
        ),
    )
    assert.equal(operatorSigning().current!.getPublicKey(), oldKey.getPublicKey())
    await everyAccountWorks('staged')

    await server.restart({ reconfigure: true })
    await everyAccountWorks('restarted, both keys trusted')
    const done = await rotateOperatorSigningKey(loadAuthDir(dir), connectSystem)
    assert.equal(done.step, 'done')
    assert.equal(done.key, staged.key)
    assert.deepEqual(done.pushed.sort(), [LOG_ACCOUNT, SYSTEM_ACCOUNT, 'acme', 'globex'].sort())
    assert.deepEqual(jwtSigningKeys(loadAuthDir(dir).operatorJwt), [done.key])
    assert.equal(issuerOf(accountJwt(LOG_ACCOUNT)), done.key)
    // Every account JWT the server stores was signed by the new key and pushed, the revoked tenant's tombstone too.
    const resolverDir = join(server.storeDir, '..', 'accounts')
    const stored = readdirSync(resolverDir).filter((f) => f.endsWith('.jwt'))
    assert.equal(stored.length, 4, `the system and log accounts, acme and globex: ${stored}`)
    for (const f of stored) assert.equal(issuerOf(readFileSync(join(resolverDir, f), 'utf8')), done.key, f)
    // The revoked tenant's is its tombstone signed anew (no connection, tagged revoked), not an active account's.
    const globexAccount = (JSON.parse(readFileSync(join(dir, 'tenants', 'globex.json'), 'utf8')) as { account: string })
      .account
    const tombstone = decode<{ limits?: { conn?: number }; tags?: string[] }>(
      readFileSync(join(resolverDir, `${globexAccount}.jwt`), 'utf8'),
    ).nats
    assert.equal(tombstone.limits?.conn, 0, "globex's stored JWT allows no connection")
    assert.ok(tombstone.tags?.includes('revoked'), "globex's stored JWT is its tombstone")

    await server.restart({ reconfigure: true })
    await everyAccountWorks('restarted, the new key alone trusted')
    await refusedWith(server.url, globex, 'the revoked tenant')
    // What the old key signs is not applied: acme's tombstone (every user revoked, no connection) signed by it.
    // nats-server answers such a push "jwt updated" (it stores it); pushAccountJwt reads back that it was not applied.
    const record = JSON.parse(readFileSync(join(dir, 'tenants', 'acme.json'), 'utf8')) as { account: string }
    const acme = await server.connect('acme')
    const system = await connectSystem()
    await assert.rejects(pushAccountJwt(system, await revokedTenantAccountJwt('acme', record.account, oldKey)), (e) =>
      isEventplaneError(e, 'bus.jwt_not_applied'),
    )
    await system.close()
    await acme.flush()
    assert.equal(acme.isClosed(), false, "acme's connection stays")
    await connectsWith(server.url, read(tenantCredsFile(dir, 'acme')))
    // The new key is recorded as the one the server knows: keys offline moves the operator's identity seed.
    const off = mkdtempSync(join(tmpdir(), 'ep-operator-rotation-'))
    try {
      const moved = await moveIdentitySeedsOffline(loadAuthDir(dir), off)
      assert.ok(
        moved.some((s) => s.seed === 'operator.nk'),
        'operator.nk moved',
      )
    } finally {
      rmSync(off, { recursive: true, force: true })
    }
  })
})
