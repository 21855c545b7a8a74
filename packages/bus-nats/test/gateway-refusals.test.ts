import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { SubmitReply } from '../src/gateway-request.ts'
import { RefusalDesk } from '../src/gateway-refusals.ts'
import { silentLogger } from '../src/logger.ts'

// Mutation audit 2026-12-02 (random sample: mutrand): a stopping gateway that dropped its held refusals went
// unseen (their requesters would wait out their own timeouts instead of hearing bus.rate_limited).
describe('the refusal desk', () => {
  const desk = (holdMs: number, maxHeld = 100) => {
    const answers: { subject: string; reply: string; body: SubmitReply }[] = []
    const d = new RefusalDesk({
      answer: (subject, reply, body) => answers.push({ subject, reply, body }),
      logger: silentLogger,
      holdMs,
      maxHeld,
    })
    return { d, answers }
  }
  const rate = { reason: 'rate', retryAfterMs: 1000 } as const

  test('held refusals are all answered, bus.rate_limited, when the desk closes', () => {
    const { d, answers } = desk(60_000)
    d.refuse('acme', 's.acme.1', 'r1', rate)
    d.refuse('acme', 's.acme.2', 'r2', rate)
    d.refuse('globex', 's.globex.1', 'r3', { reason: 'in_flight', retryAfterMs: 50 })
    assert.equal(answers.length, 0, 'held, not answered yet')
    assert.equal(d.held, 3)
    d.close()
    assert.deepEqual(answers.map((a) => a.reply).sort(), ['r1', 'r2', 'r3'])
    for (const a of answers) assert.equal('error' in a.body && a.body.error.code, 'bus.rate_limited')
    assert.equal(d.held, 0)
    assert.equal(d.count, 3)
  })

  test('with no hold, or the most held already, a refusal is answered at once with its whole retry-after', () => {
    const none = desk(0)
    none.d.refuse('acme', 's', 'r', rate)
    assert.equal(none.answers.length, 1)
    none.d.close()
    const full = desk(60_000, 1)
    full.d.refuse('acme', 's', 'held', rate)
    full.d.refuse('acme', 's', 'now', rate)
    assert.deepEqual(
      full.answers.map((a) => [a.reply, 'error' in a.body && a.body.error.details]),
      [['now', { reason: 'rate', retry_after_ms: 1000 }]],
    )
    full.d.close()
    assert.equal(full.answers.length, 2)
  })
})
