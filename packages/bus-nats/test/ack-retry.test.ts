/**
 * resendAck's bounds (mutation audit 2026-11-30, NATS boundary), through its own seam: the context a
 * subscription gives it (send once, is the connection closed, does the consumer exist). No NATS is involved
 * here: what a lost or refused ack looks like on a real server is subscription-ack-retry.test.ts's and
 * subscription.test.ts's; this file pins how many sends a failure gets, and which failures get none.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { EventplaneError, isEventplaneError } from '@eventplane/core'
import { type AckRetryContext, resendAck } from '../src/ack-retry.ts'
import { ackUnconfirmed } from '../src/nats-errors.ts'
import { within } from './fixtures.ts'

interface Script {
  /** What each send after the first does: an error to reject with, or undefined to confirm. */
  sends?: Array<unknown>
  /** What connectionClosed() answers, call by call (the last answer repeats); default always false. */
  closed?: boolean[]
  exists?: boolean | undefined
}

function context(script: Script = {}) {
  const calls = { sends: 0, closedChecks: 0, existsChecks: 0, warnings: [] as Array<Record<string, unknown>> }
  const closed = script.closed ?? [false]
  const ctx: AckRetryContext = {
    async send() {
      const outcome = script.sends?.[calls.sends] ?? ackUnconfirmed()
      calls.sends += 1
      if (outcome !== undefined && outcome !== 'ok') throw outcome
    },
    connectionClosed() {
      const answer = closed[Math.min(calls.closedChecks, closed.length - 1)]!
      calls.closedChecks += 1
      return answer
    },
    async consumerExists() {
      calls.existsChecks += 1
      return 'exists' in script ? script.exists : true
    },
    ids: { consumer: 'acme_ctl', seq: 7, event_id: '0190f0c2-0000-7000-8000-000000000007' },
    logger: {
      debug() {},
      info() {},
      error() {},
      warn: (fields) => calls.warnings.push(fields as Record<string, unknown>),
    },
  }
  return { ctx, calls }
}

describe('resendAck', () => {
  test('attempts bounds the sends, the first included: 2 attempts are one more send, then the last failure', async () => {
    const { ctx, calls } = context()
    await assert.rejects(
      resendAck(ackUnconfirmed(), ctx, { attempts: 2, delayMs: 1 }),
      (e) =>
        isEventplaneError(e, 'bus.timeout') &&
        e.details?.attempts === 2 &&
        e.details?.consumer === 'acme_ctl' &&
        e.details?.seq === 7,
    )
    assert.equal(calls.sends, 1, 'one send after the first')
    assert.equal(calls.warnings.length, 1)
  })

  test('attempts 1 sends nothing more; a later send that is confirmed ends the retries', async () => {
    const once = context()
    await assert.rejects(resendAck(ackUnconfirmed(), once.ctx, { attempts: 1, delayMs: 1 }), (e) =>
      isEventplaneError(e, 'bus.timeout'),
    )
    assert.equal(once.calls.sends, 0)
    const later = context({ sends: [ackUnconfirmed(), 'ok'] })
    await resendAck(ackUnconfirmed(), later.ctx, { attempts: 5, delayMs: 1 })
    assert.equal(later.calls.sends, 2, 'the third send was confirmed; no fourth')
  })

  test('a failure that is not a lost confirmation is final at once: no consumer look-up, no send', async () => {
    for (const first of [
      new EventplaneError('bus.forbidden', 'permissions violation'),
      new EventplaneError('core.invalid_envelope', 'bad'),
      new Error('not typed'),
    ]) {
      const { ctx, calls } = context()
      await assert.rejects(resendAck(first, ctx, { attempts: 5, delayMs: 1 }), (e) =>
        (e as Error).message.startsWith(first.message),
      )
      assert.deepEqual([calls.sends, calls.existsChecks, calls.warnings.length], [0, 0, 0], String(first))
    }
  })

  test('a closed connection ends the ack at once, before the wait; one closed during the wait sends nothing more', async () => {
    const closed = context({ closed: [true] })
    await within(
      assert.rejects(resendAck(ackUnconfirmed(), closed.ctx, { attempts: 5, delayMs: 60_000 }), (e) =>
        isEventplaneError(e, 'bus.timeout'),
      ),
      5000,
      'the ack of a closed connection, without waiting out the delay',
    )
    assert.deepEqual([closed.calls.sends, closed.calls.existsChecks], [0, 0])

    const closing = context({ closed: [false, true] })
    await assert.rejects(resendAck(ackUnconfirmed(), closing.ctx, { attempts: 5, delayMs: 1 }), (e) =>
      isEventplaneError(e, 'bus.timeout'),
    )
    assert.equal(closing.calls.sends, 0, 'nothing sent on a connection that closed during the wait')
  })

  test('a consumer JetStream no longer knows fails the ack as bus.unavailable without another send', async () => {
    const { ctx, calls } = context({ exists: false })
    await assert.rejects(
      resendAck(ackUnconfirmed(), ctx, { attempts: 5, delayMs: 1 }),
      (e) => isEventplaneError(e, 'bus.unavailable') && /acme_ctl is gone/.test(e.message) && e.details?.attempts === 1,
    )
    assert.equal(calls.sends, 0)
    const unknown = context({ exists: undefined, sends: ['ok'] })
    await resendAck(ackUnconfirmed(), unknown.ctx, { attempts: 5, delayMs: 1 })
    assert.equal(unknown.calls.sends, 1, 'a consumer that could not be looked up is still sent to')
  })
})
