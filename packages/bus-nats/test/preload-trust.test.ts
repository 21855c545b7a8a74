/**
 * `nats-setup` checks what its config preloads, the auth dir's `accounts/SYS.jwt` and `accounts/EVENTPLANE.jwt`,
 * against `operator.jwt`'s keys (its identity and `signing_keys`) before it writes the config. Against a real
 * nats-server: a preload signed by another key lets the server start and refuse every user of that account.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, mock, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { writeAccountJwt } from '../src/nats-config/auth-dir.ts'
import { LOG_ACCOUNT, SYSTEM_ACCOUNT } from '../src/nats-config/claims.ts'
import { loadAuthDir, natsSetupMain, serviceCredsFile, signingSeedFile } from '../src/nats-config/index.ts'
import { createAccount, createOperator, decodeJwt } from '../src/nkeys.ts'
import { requireSeedFile } from '../src/nats-config/seed-file.ts'
import { type TestNatsServer, connectsWith, refusedWith, startNatsServer } from '../src/testing/index.ts'

const quiet = { stdout: { write: () => true }, stderr: { write: () => true } }

describe('nats-setup checks the account JWTs it preloads', () => {
  let server: TestNatsServer
  let dir: string
  let work: string
  let out: string
  const setup = () => natsSetupMain(['--auth-dir', dir, '--store-dir', server.storeDir, '--out', out], quiet)
  const relay = () => readFileSync(serviceCredsFile(dir, 'relay'))

  before(async () => {
    server = await startNatsServer({ tenants: ['acme'] })
    dir = server.authDir!
    work = mkdtempSync(join(tmpdir(), 'ep-preload-trust-'))
    out = join(work, 'nats.conf')
  })
  after(async () => {
    await server?.stop()
    rmSync(work, { recursive: true, force: true })
  })

  test('a preload signed by a key operator.jwt does not list fails nats-setup naming the file, no config written; the server would refuse its users', async () => {
    assert.equal(await setup(), 0, 'the auth dir as made passes')
    rmSync(out)
    const file = join(dir, 'accounts', `${LOG_ACCOUNT}.jwt`)
    const good = readFileSync(file, 'utf8')
    // Same claims (revocations, signing keys), signed by an operator key the auth dir's operator.jwt does not list.
    await writeAccountJwt(loadAuthDir(dir), LOG_ACCOUNT, createOperator())
    const untrusted = readFileSync(file, 'utf8')
    await assert.rejects(
      setup(),
      (e) =>
        isEventplaneError(e, 'bus.config') &&
        e.message.startsWith(`${file} is not an account JWT signed by operator.jwt's keys:`) &&
        !e.message.includes(join(dir, 'accounts', `${SYSTEM_ACCOUNT}.jwt`)) &&
        !e.message.includes('eyJ') &&
        !e.message.includes('\n'),
    )
    assert.equal(existsSync(out), false, 'no config written')

    // Why: a server started with that preload (the fixture's config, made without the check) refuses the relay.
    await server.restart({ reconfigure: true })
    await refusedWith(server.url, relay(), 'the relay, under an untrusted log account preload')

    // The fix the error names: remove it, run nats-setup again, as an operator does some time later (the clock
    // moved on by 5 s): the server keeps the JWT it stored at the start above unless the new preload was issued
    // no earlier (and the untrusted one was issued a second after the good one, within the same second here).
    rmSync(file)
    mock.timers.enable({ apis: ['Date'], now: Date.now() + 5000 })
    try {
      assert.equal(await setup(), 0)
    } finally {
      mock.timers.reset()
    }
    assert.ok(existsSync(out))
    // Written anew by the operator's signer: the JWT of before the test, or the same claims issued a second later.
    assert.notEqual(readFileSync(file, 'utf8'), untrusted, 'written anew')
    assert.equal(
      decodeJwt(readFileSync(file, 'utf8').trim()).iss,
      decodeJwt(good.trim()).iss,
      "signed by the operator's signer",
    )
    await server.restart({ reconfigure: true })
    await connectsWith(server.url, relay())
  })

  test("the system account's preload of another subject, signed by a trusted key, fails the same way; one not verifying fails naming it", async () => {
    const file = join(dir, 'accounts', `${SYSTEM_ACCOUNT}.jwt`)
    const good = readFileSync(file, 'utf8')
    const [head, body, sig] = good.trim().split('.') as [string, string, string]
    rmSync(out, { force: true })
    const trustedKey = requireSeedFile(
      signingSeedFile(dir, { operator: true }, 'current'),
      'operator',
      'the fixture made it',
    )
    try {
      // Its claims (revocations, signing keys: nats-setup keeps it) for another account, by the trusted key.
      const claims = { ...decodeJwt(good.trim()), sub: createAccount().getPublicKey() }
      const other = Buffer.from(JSON.stringify(claims)).toString('base64url')
      const signed = Buffer.from(trustedKey.sign(new TextEncoder().encode(`${head}.${other}`))).toString('base64url')
      writeFileSync(file, `${head}.${other}.${signed}\n`)
      await assert.rejects(
        setup(),
        (e) =>
          isEventplaneError(e, 'bus.config') &&
          e.message.startsWith(`${file} is not an account JWT signed by operator.jwt's keys:`),
        'another subject',
      )
      assert.equal(existsSync(out), false, 'no config written')
      // Its claims as they are, the signature of other bytes.
      writeFileSync(file, `${head}.${body}.${sig.slice(4)}AAAA\n`)
      await assert.rejects(
        setup(),
        (e) =>
          isEventplaneError(e, 'bus.config') &&
          e.message.startsWith(`${file} does not hold a JWT whose signature verifies:`) &&
          !e.message.includes('eyJ'),
        'not verifying',
      )
      assert.equal(existsSync(out), false, 'no config written')
    } finally {
      writeFileSync(file, good)
    }
    assert.equal(await setup(), 0)
  })
})
