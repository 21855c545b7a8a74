/**
 * Attack review 2026-12-02: a tenant is its name. The log is append-only, so a revoked tenant's events stay under
 * its name (in PostgreSQL and on the stream), and an account added again under that name reads every one of them
 * through its new consumers and its live tail. Before this test `tenant add` of a revoked name just made a new
 * account: handed to another customer, the name handed over the first one's whole history.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import { listTenants, loadAuthDir } from '../src/nats-config/index.ts'
import { tenantCredsFile } from '../src/nats-config/auth-dir.ts'
import { JS_API, isJsApiError } from '../src/nats-errors.ts'
import { STREAM_NAME, logSubject, tenantInboxPrefix } from '../src/subjects.ts'
import { type TestNatsServer, startNatsServer } from '../src/testing/index.ts'

describe('a revoked tenant’s name', () => {
  let server: TestNatsServer
  const conns: NatsConnection[] = []

  before(async () => {
    server = await startNatsServer({ tenants: ['acme', 'globex'] })
  })
  after(async () => {
    for (const nc of conns) await nc.close().catch(() => {})
    await server?.stop()
  })

  test('is not added again without readmit (bus.bad_request, nothing made); with it, the new account reads the events stored under the name before', async () => {
    const operator = await server.connect('operator')
    conns.push(operator)
    const old = logSubject('intent', 'acme', 'deployment', 'old')
    await jetstream(operator).publish(old, '{"of":"the first acme"}')
    await server.revokeTenant('acme')
    const jsm = await jetstreamManager(operator)
    const acmeRecord = () => listTenants(loadAuthDir(server.authDir!)).find((r) => r.tenant === 'acme')!

    await assert.rejects(
      server.addTenant('acme'),
      (e) =>
        isEventplaneError(e, 'bus.bad_request') &&
        /^tenant acme was revoked at \S+: its events stay in the log/.test(e.message) &&
        e.message.includes('--readmit') &&
        e.details.tenant === 'acme',
    )
    assert.equal(acmeRecord().status, 'revoked', 'the record is left as it was')
    assert.equal(existsSync(tenantCredsFile(server.authDir!, 'acme')), false, 'no creds written')
    await assert.rejects(jsm.consumers.info(STREAM_NAME, 'acme_tail'), (e) => isJsApiError(e, JS_API.consumerNotFound))

    const again = await server.addTenant('acme', { readmit: true })
    assert.equal(again.created, true)
    assert.equal(acmeRecord().status, 'active')
    const acme = await server.connect('acme', { inboxPrefix: tenantInboxPrefix('acme') })
    conns.push(acme)
    const first = await (await jetstream(acme).consumers.get(STREAM_NAME, 'acme_tail')).next({ expires: 5000 })
    assert.equal(first?.subject, old, 'what readmit means: the history stored under the name')
  })
})
