import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventplaneError, InvalidName, isEventplaneError } from '@eventplane/core'
import { startNatsServer, type TestNatsServer } from '@eventplane/bus-nats/testing'
import { jetstreamManager } from '@nats-io/jetstream'
import { type NatsConnection, connect } from '@nats-io/transport-node'
import { natsDriverError, natsFailure } from '../src/index.ts'

/** What `p` rejects with (it must reject). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (e) {
    return e
  }
  throw new Error('expected a rejection')
}

describe('NATS failures are mapped in one place, by nats.js class', () => {
  let server: TestNatsServer
  let operator: NatsConnection
  let acme: NatsConnection

  before(async () => {
    server = await startNatsServer({ tenants: ['acme'] })
    operator = await server.connect('operator')
    acme = await server.connect('acme')
  })
  after(async () => {
    await acme?.close()
    await operator?.close()
    await server?.stop()
  })

  test('real NATS failures get their bus.* code; what is not a NATS failure is left alone', async () => {
    const nobody = await rejection(operator.request('eventplane-test.nobody', '', { timeout: 2000 }))
    assert.equal(natsFailure(nobody, 'ask nobody').code, 'bus.unavailable')
    assert.equal(natsDriverError(nobody)?.code, 'bus.unavailable')

    const silent = operator.subscribe('eventplane-test.silent')
    await operator.flush()
    const late = await rejection(operator.request('eventplane-test.silent', '', { timeout: 200 }))
    silent.unsubscribe()
    assert.equal(natsFailure(late, 'ask a silent service').code, 'bus.timeout')

    const jsm = await jetstreamManager(operator)
    const missing = await rejection(jsm.streams.info('NO_SUCH_STREAM'))
    const refused = natsFailure(missing, 'read stream NO_SUCH_STREAM')
    assert.equal(refused.code, 'bus.stream_mismatch')
    assert.equal(refused.details.api_code, 10059)
    assert.match(refused.message, /^JetStream refused to read stream NO_SUCH_STREAM: /)

    const typed = new InvalidName('tenant must not be empty')
    assert.equal(natsFailure(typed, 'x'), typed, 'a typed error passes through')
    assert.equal(natsDriverError(typed), undefined)
    assert.equal(natsDriverError(new Error('not NATS')), undefined)
    assert.equal(natsFailure(new Error('socket gone'), 'publish').code, 'bus.unavailable')
    assert.ok(isEventplaneError(natsFailure('odd', 'x')))
    assert.ok(natsFailure(nobody, 'x') instanceof EventplaneError)
  })

  test("a refused login is bus.auth_failed saying what to check and do, not the server's two words alone", async () => {
    const refused = await rejection(
      connect({ servers: server.url, user: 'nobody', pass: 'wrong', maxReconnectAttempts: 0, timeout: 5000 }),
    )
    const typed = natsDriverError(refused)
    assert.equal(typed?.code, 'bus.auth_failed')
    assert.match(typed!.message, /^NATS refused the credentials: Authorization Violation \(/)
    assert.match(
      typed!.message,
      /a revoked key, or a creds file older than the one the auth dir holds now: use the current/,
    )
  })

  test('a publish the account may not make is bus.forbidden, naming the action', async () => {
    const violation = new Promise<unknown>((resolve) => {
      const conn = acme
      ;(async () => {
        for await (const s of conn.status()) if (s.type === 'error') resolve(s.error)
      })()
    })
    acme.publish('$JS.API.STREAM.DELETE.EVENTPLANE', '')
    const e = await violation
    const typed = natsFailure(e, 'delete the stream')
    assert.equal(typed.code, 'bus.forbidden')
    assert.match(
      typed.message,
      /^not permitted to delete the stream \(publish to \$JS\.API\.STREAM\.DELETE\.EVENTPLANE\)$/,
    )
  })
})
