/**
 * An upgrade that changes a service tier's grants: running nats-setup again
 * (initAuthDir over the existing auth dir) re-issues that tier's creds for
 * the same user key with the new grants, and leaves every other file as it
 * was. The old creds are written here as an earlier release wrote them: the
 * relay's grants without `$JS.API.STREAM.MSG.GET.EVENTPLANE`.
 */
import assert from 'node:assert/strict'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { jetstreamManager } from '@nats-io/jetstream'
import { parseCreds } from '@nats-io/jwt'
import { fromSeed } from '@nats-io/nkeys'
import { reissuedCreds } from '../src/nats-config/claims.ts'
import { initAuthDir, loadAuthDir, serviceCredsFile, tenantCredsFile } from '../src/nats-config/index.ts'
import { SERVICE_USERS, servicePermissions, tenantPermissions } from '../src/nats-config/permissions.ts'
import { natsFailure } from '../src/nats-errors.ts'
import { STREAM_NAME, logFilter, logSubject } from '../src/subjects.ts'
import type { TestNatsServer } from '../src/testing/index.ts'
import { startServerWithLogMessage } from './support/stream-server.ts'

const MSG_GET = `$JS.API.STREAM.MSG.GET.${STREAM_NAME}`

describe('nats-setup over an existing auth dir (an upgrade)', () => {
  let server: TestNatsServer
  let authDir: string

  before(async () => {
    server = await startServerWithLogMessage(['acme'])
    authDir = server.authDir!
  })
  after(async () => {
    await server?.stop()
  })

  /** Reads message 1 of the log stream on a new connection as the relay: what a relay does when it becomes active. */
  const relayReadsTip = async (): Promise<void> => {
    const nc = await server.connect('relay')
    try {
      const jsm = await jetstreamManager(nc, { checkAPI: false })
      await jsm.streams.getMessage(STREAM_NAME, { seq: 1 }).catch((e) => {
        throw natsFailure(e, 'read the last message')
      })
    } finally {
      await nc.close()
    }
  }
  const files = () => SERVICE_USERS.map((u) => serviceCredsFile(authDir, u))
  const read = (f: string) => readFileSync(f)

  test('a tier whose grants changed gets new creds for the same key; the rest stays byte for byte; the server grants what they say', async () => {
    const relayFile = serviceCredsFile(authDir, 'relay')
    const { relay } = servicePermissions()
    const older = { ...relay, publish: { allow: relay.publish!.allow!.filter((s) => s !== MSG_GET) } }
    const oldCreds = await reissuedCreds(read(relayFile), 'relay', loadAuthDir(authDir).log, older)
    assert.ok(oldCreds, 'the older grants differ')
    writeFileSync(relayFile, oldCreds, { mode: 0o600 })
    await assert.rejects(relayReadsTip(), (e) => isEventplaneError(e, 'bus.forbidden'), 'the older relay cannot')

    const before = new Map(files().map((f) => [f, read(f)]))
    await initAuthDir(authDir)
    const after = await parseCreds(read(relayFile))
    assert.equal(after.uc.sub, (await parseCreds(oldCreds)).uc.sub, 'the same user key')
    assert.ok(after.uc.nats.pub?.allow?.includes(MSG_GET), 'the new grant')
    assert.equal(statSync(relayFile).mode & 0o777, 0o600)
    for (const [f, bytes] of before) if (f !== relayFile) assert.deepEqual(read(f), bytes, `${f} unchanged`)
    await relayReadsTip()

    // Once current, running it again writes nothing.
    const current = new Map(files().map((f) => [f, read(f)]))
    await initAuthDir(authDir)
    for (const [f, bytes] of current) assert.deepEqual(read(f), bytes, `${f} unchanged`)
  })

  test('a tenant whose grants an earlier release issued differently gets them re-issued by a re-add, same key; then nothing changes', async () => {
    const file = tenantCredsFile(authDir, 'acme')
    const now = tenantPermissions('acme', [])
    const tailFilter = logFilter({ tenant: 'acme' })
    // An earlier release that did not let tenants tail: the subscribe grant without the log filter.
    const older = { ...now, subscribe: { allow: now.subscribe!.allow!.filter((s) => s !== tailFilter) } }
    // The tenant's account key, where tenant add keeps it.
    const account = fromSeed(new TextEncoder().encode(readFileSync(join(authDir, 'tenants', 'acme.nk'), 'utf8').trim()))
    const oldCreds = await reissuedCreds(read(file), 'acme', account, older)
    assert.ok(oldCreds, 'the older grants differ')
    writeFileSync(file, oldCreds, { mode: 0o600 })

    await server.addTenant('acme')
    const after = await parseCreds(read(file))
    assert.equal(after.uc.sub, (await parseCreds(oldCreds)).uc.sub, 'the same user key')
    assert.ok(after.uc.nats.sub?.allow?.includes(tailFilter), 'the grant of now')
    // The server takes it: the tenant tails its own log subjects with the re-issued creds.
    const acme = await server.connect('acme')
    const sub = acme.subscribe(tailFilter, { max: 1 })
    await acme.flush()
    const operator = await server.connect('operator')
    operator.publish(logSubject('intent', 'acme', 'deployment', 'tailed'), 'x')
    for await (const m of sub) assert.equal(m.subject, logSubject('intent', 'acme', 'deployment', 'tailed'))

    const current = read(file)
    await server.addTenant('acme')
    assert.deepEqual(read(file), current, 'a re-add with the grants of now writes the same creds')
  })
})
