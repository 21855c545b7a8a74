/**
 * `untrustedStoredAccounts` (what nats-setup checks in the resolver dir): which stored account JWTs a server
 * configured with the auth dir's `operator.jwt` would not apply. Trusted: signed by the operator's identity key or
 * a signing key `operator.jwt` lists, of the account the file is named for, verifying. No server needed: the
 * files are what nats-server's full resolver stores (`<account>.jwt`).
 */
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { logAccountJwt, systemAccountJwt } from '../src/nats-config/claims.ts'
import { initAuthDir } from '../src/nats-config/index.ts'
import { untrustedStoredAccounts } from '../src/nats-config/resolver-trust.ts'

describe('the resolver dir check', () => {
  const root = mkdtempSync(join(tmpdir(), 'ep-resolver-trust-'))
  after(() => rmSync(root, { recursive: true, force: true }))

  test('names a stored JWT of another account, or one that does not verify; not one the operator identity signed', async () => {
    const auth = await initAuthDir(join(root, 'auth'))
    const resolverDir = join(root, 'accounts')
    const store = (account: string, jwt: string) => writeFileSync(join(resolverDir, `${account}.jwt`), `${jwt}\n`)
    const system = auth.system.getPublicKey()
    const log = auth.log.getPublicKey()
    mkdirSync(resolverDir)

    // Signed by the operator's identity key (an auth dir from before signing keys): applied.
    store(system, await systemAccountJwt(auth.system, auth.operator))
    store(log, auth.logAccountJwt)
    assert.deepEqual(untrustedStoredAccounts(auth, resolverDir), [])

    // The log account's JWT stored as the system account's: signed by a trusted key, of another account.
    store(system, auth.logAccountJwt)
    assert.deepEqual(untrustedStoredAccounts(auth, resolverDir), ['SYS'])
    store(system, auth.systemAccountJwt)

    // A trusted JWT whose signature does not verify (one character of it changed).
    const good = await logAccountJwt(auth.log, auth.operator)
    const [head, body, sig] = good.split('.') as [string, string, string]
    store(log, `${head}.${body}.${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`)
    assert.deepEqual(untrustedStoredAccounts(auth, resolverDir), ['EVENTPLANE'])
  })
})
