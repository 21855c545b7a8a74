import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { connect, credsAuthenticator } from '@nats-io/transport-node'
import { listTenants, loadAuthDir } from '../src/nats-config/index.ts'
import { tenantInboxPrefix } from '../src/subjects.ts'
import { type TestNatsServer, startNatsServer } from '../src/testing/index.ts'

describe('tenant accounts carry server-side limits', () => {
  let server: TestNatsServer
  before(async () => {
    server = await startNatsServer()
  })
  after(async () => {
    await server?.stop()
  })

  /** A fresh connection as `tenant`, not kept by the server harness (so the test decides when it closes). */
  const dial = (tenant: string) =>
    connect({
      servers: server.url,
      authenticator: credsAuthenticator(readFileSync(server.credentials[tenant]!.creds)),
      inboxPrefix: tenantInboxPrefix(tenant),
      maxReconnectAttempts: 0,
      timeout: 2000,
    })

  test('the server refuses a connection over the limit and announces the largest message; a re-add keeps both', async () => {
    await server.addTenant('initech', { limits: { connections: 2, payloadBytes: 64 * 1024 } })
    await server.addTenant('initech') // again, without limits: the record keeps them
    const record = listTenants(loadAuthDir(server.authDir!)).find((r) => r.tenant === 'initech')
    assert.deepEqual(record?.limits, { connections: 2, payloadBytes: 64 * 1024, subscriptions: 1000 })
    const first = await dial('initech')
    const second = await dial('initech')
    try {
      assert.equal(first.info?.max_payload, 64 * 1024, 'the account limit, not the server 1 MiB')
      await assert.rejects(dial('initech'), 'a third connection is refused')
    } finally {
      await Promise.allSettled([first.close(), second.close()])
    }
  })

  test('by default a tenant account allows 64 connections and messages of 128 KiB', async () => {
    await server.addTenant('hooli')
    const nc = await dial('hooli')
    try {
      assert.equal(nc.info?.max_payload, 128 * 1024)
    } finally {
      await nc.close()
    }
  })
})
