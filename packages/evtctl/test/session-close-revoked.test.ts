import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  type RefusedReconnectProxy,
  type TestNatsServer,
  holdRefusedReconnect,
  startNatsServer,
} from '@eventplane/bus-nats/testing'
import { resolveConfig } from '../src/config.ts'
import { Output } from '../src/io.ts'
import { createLogger } from '../src/logger.ts'
import { Session } from '../src/session.ts'

const silent = { write: () => true }

/**
 * A session's service connections drain when the command ends. One the server closes for good while it
 * drains (its user revoked: the reconnect refused) must not hold the command forever: nats.js answers no
 * drain's PING once closed, and `evtctl up` sat there after its failure line was due
 * (tests/faults/service-revoked.test.ts). The proxy holds the last reconnect, so that the drain starts
 * while it dials, and lets it through only then, to be refused.
 */
describe('session close with a service connection the server closes while it drains', () => {
  let nats: TestNatsServer
  let proxy: RefusedReconnectProxy

  before(async () => {
    nats = await startNatsServer()
    proxy = await holdRefusedReconnect(nats.port)
  })
  after(async () => {
    await proxy?.close()
    await nats?.stop()
  })

  test('Session.close returns once that connection is closed', async () => {
    const io = { stdout: silent, stderr: silent, env: {} }
    const config = resolveConfig({ natsUrl: proxy.url, natsCreds: nats.credentials.relay!.creds }, { env: {} })
    const session = new Session(io, config, new Output(io, false), createLogger('silent', silent, {}))
    const nc = await session.serviceNats('eventplane-test')
    nc.subscribe('eventplane.test.>') // a subscription, for the drain to flush
    await nc.flush()

    await nats.revokeServiceUsers(['relay'])
    const { release } = await proxy.held
    // The drain's PING waits on the held dial; released, the server refuses it and the client closes.
    const closing = session.close()
    release()
    assert.match(String(await nc.closed()), /Authorization Violation/)
    const done = await Promise.race([
      closing.then(() => 'closed'),
      new Promise<string>((resolve) => setTimeout(resolve, 5_000, 'still draining').unref()),
    ])
    assert.equal(done, 'closed', 'Session.close waits on a drain nats.js never answers')
  })
})
