/**
 * An upgrade that changes a service tier's grants: running nats-setup again
 * (initAuthDir over the existing auth dir) re-issues that tier's creds for
 * the same user key with the new grants, and leaves every other file as it
 * was. The old creds are written here as an earlier release wrote them: the
 * relay's grants without `$JS.API.STREAM.MSG.GET.EVENTPLANE`.
 */
import assert from 'node:assert/strict'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { jetstreamManager } from '@nats-io/jetstream'
import { parseCreds } from '@nats-io/jwt'
import { jetstream } from '@nats-io/jetstream'
import { reissuedCreds } from '../src/nats-config/claims.ts'
import { initAuthDir, loadAuthDir, serviceCredsFile } from '../src/nats-config/index.ts'
import { SERVICE_USERS, servicePermissions } from '../src/nats-config/permissions.ts'
import { natsFailure } from '../src/nats-errors.ts'
import { ensureStream } from '../src/stream.ts'
import { STREAM_NAME, logSubject } from '../src/subjects.ts'
import { startNatsServer, type TestNatsServer } from '../src/testing/index.ts'

const MSG_GET = `$JS.API.STREAM.MSG.GET.${STREAM_NAME}`

describe('nats-setup over an existing auth dir (an upgrade)', () => {
  let server: TestNatsServer
  let authDir: string

  before(async () => {
    server = await startNatsServer({ tenants: ['acme'] })
    authDir = server.authDir!
    const operator = await server.connect('operator')
    await ensureStream(await jetstreamManager(operator))
    await jetstream(operator).publish(logSubject('intent', 'acme', 'deployment', 'a'), 'x')
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
})
