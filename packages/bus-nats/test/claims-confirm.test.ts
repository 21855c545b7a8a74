/**
 * A pushed account JWT is confirmed applied, not just answered. nats-server 2.9 answers "jwt updated" to a JWT
 * signed by a key it does not trust: it stores it in its resolver without applying it, and loads it at its next
 * start, which then refuses the account. Against a real nats-server, the auth dir's operator signing key is
 * swapped for one the server does not trust (what it signs is stored and answered, never applied).
 */
import assert from 'node:assert/strict'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import type { KeyPair } from '@nats-io/nkeys'
import { connect } from '@nats-io/transport-node'
import { userCreds } from '../src/nats-config/claims.ts'
import {
  type TenantRecord,
  CLAIMS_UPDATE_SUBJECT,
  connectTenantAdmin,
  loadAuthDir,
  natsSetupMain,
  pushAccountJwt,
  rotateTenantUser,
  serviceCredsFile,
  signingPushedFile,
  signingSeedFile,
  tenantCredsFile,
} from '../src/nats-config/index.ts'
import { untrustedStoredAccounts } from '../src/nats-config/resolver-trust.ts'
import { recordAccountJwt } from '../src/nats-config/tenants.ts'
import { natsFailure } from '../src/nats-errors.ts'
import { createOperator, credsAuthenticator, decodeJwt } from '../src/nkeys.ts'
import { type TestNatsServer, connectsWith, startNatsServer } from '../src/testing/index.ts'
import { within } from './fixtures.ts'

const OPERATOR = { operator: true } as const
/** `bus.jwt_not_applied` naming `account`, one line, no JWT; its message says what the server does `now`. */
const notApplied = (account: string, now: string) => (e: unknown) =>
  isEventplaneError(e, 'bus.jwt_not_applied') &&
  e.message.includes(account) &&
  e.message.includes(now) &&
  !e.message.includes('eyJ') &&
  !e.message.includes('\n')

/** `jwt`'s claims signed by `key`, issued at `iat` (seconds): nats-jwt's encoders always issue "now". */
function resigned(jwt: string, key: KeyPair, iat: number): string {
  const claims = { ...decodeJwt(jwt), iss: key.getPublicKey(), iat, jti: `resigned-${iat}` }
  const head = Buffer.from(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' })).toString('base64url')
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url')
  const sig = Buffer.from(key.sign(new TextEncoder().encode(`${head}.${body}`))).toString('base64url')
  return `${head}.${body}.${sig}`
}

describe('a pushed account JWT is confirmed applied', () => {
  let server: TestNatsServer
  let dir: string
  let resolverDir: string
  let trusted: { seed: string; pushed: string }
  const record = (tenant: string) =>
    JSON.parse(readFileSync(join(dir, 'tenants', `${tenant}.json`), 'utf8')) as TenantRecord
  const creds = (tenant: string) => readFileSync(tenantCredsFile(dir, tenant))
  /** The auth dir signs account JWTs with an operator signing key the running server does not trust. */
  const untrustKey = () => {
    const key = createOperator()
    writeFileSync(signingSeedFile(dir, OPERATOR), new TextDecoder().decode(key.getSeed()))
    writeFileSync(signingPushedFile(dir, OPERATOR), JSON.stringify({ pushed: [key.getPublicKey()] }))
  }
  const trustKey = () => {
    writeFileSync(signingSeedFile(dir, OPERATOR), trusted.seed)
    writeFileSync(signingPushedFile(dir, OPERATOR), trusted.pushed)
  }

  before(async () => {
    server = await startNatsServer({ tenants: ['acme', 'globex', 'initech'] })
    dir = server.authDir!
    resolverDir = join(server.storeDir, '..', 'accounts')
    trusted = {
      seed: readFileSync(signingSeedFile(dir, OPERATOR), 'utf8'),
      pushed: readFileSync(signingPushedFile(dir, OPERATOR), 'utf8'),
    }
  })
  after(async () => {
    await server?.stop()
  })

  test('a push the server applies passes: a new account (loaded by the read back), then a loaded one', async () => {
    await server.addTenant('hooli')
    const hooli = await server.connect('hooli')
    await server.addTenant('hooli', { limits: { connections: 5 } })
    await hooli.flush()
    await connectsWith(server.url, creds('hooli'))
    assert.deepEqual(untrustedStoredAccounts(loadAuthDir(dir), resolverDir), [])
  })

  test('a revoke signed by an untrusted key fails bus.jwt_not_applied: the record, the connection and the account after a restart stay', async () => {
    const acme = await server.connect('acme', { maxReconnectAttempts: -1, reconnectTimeWait: 50 })
    const before = record('acme')
    untrustKey()
    try {
      await assert.rejects(
        server.revokeTenant('acme'),
        notApplied(before.account, 'it keeps the JWT it had, pushed back to its resolver'),
      )
    } finally {
      trustKey()
    }
    assert.deepEqual(record('acme'), before, 'the record is unchanged (active)')
    await acme.flush()
    assert.equal(acme.isClosed(), false, "acme's connection stays")
    // The server stored the refused JWT; the one it applies was pushed back over it, so a restart keeps acme.
    assert.deepEqual(untrustedStoredAccounts(loadAuthDir(dir), resolverDir), [])
    await server.restart()
    await connectsWith(server.url, creds('acme'))
  })

  test('an untrusted push of an account the server had not loaded: bus.jwt_not_applied, and nats-setup names it until it is pushed again', async () => {
    // Restarted, the server has loaded no tenant account (each push since its start loaded its account).
    await server.restart()
    const admin = await connectTenantAdmin(loadAuthDir(dir), server.url)
    untrustKey()
    try {
      await assert.rejects(
        rotateTenantUser(loadAuthDir(dir), admin, 'globex'),
        notApplied(record('globex').account, 'it refuses the account until it is pushed a JWT it trusts'),
      )
    } finally {
      trustKey()
      await admin.close()
    }
    // Nothing applied to push back: the server stores the refused JWT and refuses globex until one it trusts comes.
    await assert.rejects(connectsWith(server.url, creds('globex')), /Authorization Violation/)
    assert.deepEqual(untrustedStoredAccounts(loadAuthDir(dir), resolverDir), ['globex'])
    const args = ['--auth-dir', dir, '--store-dir', server.storeDir, '--resolver-dir', resolverDir]
    const io = { stdout: { write: () => true }, stderr: { write: () => true } }
    await assert.rejects(
      natsSetupMain([...args, '--out', join(tmpdir(), `jwtcheck-${process.pid}.conf`)], io),
      (e) => isEventplaneError(e, 'bus.config') && /\bglobex\b/.test(e.message) && !/\bacme\b/.test(e.message),
    )
    await server.addTenant('globex')
    assert.deepEqual(untrustedStoredAccounts(loadAuthDir(dir), resolverDir), [])
    await connectsWith(server.url, creds('globex'))
  })

  test("what an unconfirmed push stored (before this release): the log account's JWT from an untrusted key; nats-setup names it, a restart refuses every service user", async () => {
    const auth = loadAuthDir(dir)
    const system = await server.connect('system')
    // Issued after every JWT so far: at its start the server keeps it over the older preloaded one.
    const rogue = resigned(auth.logAccountJwt, createOperator(), Math.floor(Date.now() / 1000) + 1)
    const answer = (await system.request(CLAIMS_UPDATE_SUBJECT, rogue)).json<{ data?: { code?: number } }>()
    assert.equal(answer.data?.code, 200, 'nats-server answers "jwt updated"')
    assert.deepEqual(untrustedStoredAccounts(auth, resolverDir), ['EVENTPLANE'])
    const io = { stdout: { write: () => true }, stderr: { write: () => true } }
    const args = ['--auth-dir', dir, '--store-dir', server.storeDir, '--resolver-dir', resolverDir]
    await assert.rejects(
      natsSetupMain([...args, '--out', join(tmpdir(), `jwtcheck-log-${process.pid}.conf`)], io),
      (e) => isEventplaneError(e, 'bus.config') && /\bEVENTPLANE\b/.test(e.message),
    )
    await server.restart()
    await assert.rejects(
      connectsWith(server.url, readFileSync(serviceCredsFile(dir, 'relay'))),
      /Authorization Violation/,
    )
    // A confirmed push of the auth dir's log account JWT (what `creds revoke-old` does) brings it back.
    const again = await server.connect('system')
    await pushAccountJwt(again, auth.logAccountJwt)
    await connectsWith(server.url, readFileSync(serviceCredsFile(dir, 'relay')))
    assert.deepEqual(untrustedStoredAccounts(auth, resolverDir), [])
  })

  test('system creds that may only push (issued before this release): bus.forbidden naming nats-setup', async () => {
    const auth = loadAuthDir(dir)
    const pushOnly = { publish: { allow: ['$SYS.REQ.CLAIMS.>'] }, subscribe: { allow: ['_INBOX.>'] } }
    const old = await userCreds('system', auth.system, pushOnly, auth.system)
    const system = await connect({ servers: server.url, authenticator: credsAuthenticator(old) })
    try {
      await assert.rejects(
        pushAccountJwt(system, await recordAccountJwt(auth, record('initech'), system), 2000),
        (e) => isEventplaneError(e, 'bus.forbidden') && /nats-setup/.test(e.message),
      )
    } finally {
      await system.close()
    }
  })

  test('a new tenant whose push is not applied: no record, no creds, its signing key not recorded as pushed', async () => {
    untrustKey()
    try {
      await assert.rejects(server.addTenant('umbrella'), (e) => isEventplaneError(e, 'bus.jwt_not_applied'))
    } finally {
      trustKey()
    }
    // Recorded as pushed, the signing key would sign its users (refused by the server) and let keys offline
    // move the identity seed that still signs for it.
    assert.equal(existsSync(signingPushedFile(dir, { tenant: 'umbrella' })), false, 'signing key not marked pushed')
    assert.equal(existsSync(tenantCredsFile(dir, 'umbrella')), false, 'no creds')
    assert.equal(existsSync(join(dir, 'tenants', 'umbrella.json')), false, 'no record')
    await server.addTenant('umbrella')
    await connectsWith(server.url, creds('umbrella'))
  })

  test('the system user may push and read back one account, nothing else of $SYS: no server-wide request, no events', async () => {
    const system = await server.connect('system')
    try {
      // Every server's variables and every account's connections: not what a push needs.
      for (const subject of ['$SYS.REQ.SERVER.PING.VARZ', '$SYS.REQ.SERVER.PING.CONNZ', '$SYS.REQ.SERVER.PING'])
        await assert.rejects(
          system.request(subject, '{}', { timeout: 2000 }),
          (e) => natsFailure(e).code === 'bus.forbidden',
          subject,
        )
      // Nor may it listen to the server's events (every account's connects and disconnects).
      const events = system.subscribe('$SYS.ACCOUNT.>')
      const closed = await within(events.closed, 5000, 'the events subscription to be refused')
      assert.match(String(closed), /Permissions Violation for Subscription/)
    } finally {
      await system.close()
    }
  })
})
