import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { type RateLimited, isEventplaneError } from '@eventplane/core'
import { startGateway } from '../src/gateway.ts'
import { submitSubject } from '../src/subjects.ts'
import { eventually, within } from './fixtures.ts'
import { rateLimited, useAdmissionBench } from './support/admission-bench.ts'

const encoder = new TextEncoder()

/**
 * The admission's edges the fairness tests (gateway-limits.test.ts) do not
 * reach: the size bound at arrival, bytes held and released, a request
 * larger than its buckets or bounds, refusals that must take no token, a
 * clock that goes back, the sweep of idle tenants, and stop.
 */
describe('gateway admission edges: sizes, bytes held, tokens, the clock, the sweep, stop', () => {
  const bench = useAdmissionBench('ep_gw_edges', { category: 'edges', type: 'edged' })
  const { connection, intent, submit, withGateway } = bench
  const blob = (bytes: number) => ({ blob: 'x'.repeat(bytes) })

  async function refused(p: Promise<unknown>, reason: string): Promise<RateLimited> {
    const e = await rateLimited(p, `expected bus.rate_limited (${reason})`)
    assert.equal(e.details.reason, reason)
    return e
  }

  test('a body of exactly maxPayloadBytes is served; one byte more is refused at arrival and takes no token', async () => {
    const max = 2048
    /** A request body of exactly `bytes` bytes. */
    const body = (n: number, bytes: number): Uint8Array => {
      const draft = intent('acme', n, { pad: '' })
      const bare = encoder.encode(JSON.stringify({ event: draft })).byteLength
      return encoder.encode(JSON.stringify({ event: { ...draft, data: { n, pad: 'x'.repeat(bytes - bare) } } }))
    }
    const send = async (n: number, data: Uint8Array) =>
      (
        await connection('acme').request(submitSubject('acme', 'edges', `s-${n}`), data, { timeout: 10_000 })
      ).json<object>()
    // One request a second, one at once: a token taken by the oversized request would refuse the next.
    await withGateway(
      { perTenant: { ratePerSecond: 1, burst: 1 } },
      async () => {
        const over = body(1, max + 1)
        assert.equal(over.byteLength, max + 1)
        const tooLarge = (await send(1, over)) as { error?: { code: string } }
        assert.equal(tooLarge.error?.code, 'core.payload_too_large', JSON.stringify(tooLarge))
        const exact = body(2, max)
        assert.equal(exact.byteLength, max)
        const ok = await send(2, exact)
        assert.ok('ok' in ok, `a body of exactly ${max} bytes is served: ${JSON.stringify(ok)}`)
      },
      { maxPayloadBytes: max },
    )
  })

  test("a lone request over its tenant's byte bound is admitted; held bytes bound the tenant and the gateway, and are freed", async () => {
    const limits = { perTenant: { maxBytesInFlight: 4096, maxConcurrent: 4 }, maxBytesInFlight: 6144 }
    await withGateway(limits, async (gateway) => {
      bench.store.hold('acme')
      bench.store.hold('globex')
      const lone = submit('acme', 1, blob(5000))
      await eventually(() => gateway.load.requests === 1, 'a lone acme request larger than 4 KiB admitted')
      await refused(submit('acme', 2, blob(100)), 'tenant_bytes')
      const small = submit('globex', 1, blob(100))
      await eventually(() => gateway.load.requests === 2, 'a small globex request beside it')
      await refused(submit('globex', 2, blob(1000)), 'bytes')
      bench.store.release('acme')
      bench.store.release('globex')
      await Promise.all([lone, small])
      assert.deepEqual(gateway.load.requests, 0)
      assert.equal(gateway.load.bytes, 0, 'every byte held is freed when its request settles')
      // acme's bytes are free again: two requests of 1.5 KiB fit side by side under its 4 KiB.
      bench.store.hold('acme')
      const pair = [submit('acme', 3, blob(1500))]
      await eventually(() => gateway.load.requests === 1, 'the first of the pair admitted')
      pair.push(submit('acme', 4, blob(1500)))
      await eventually(() => gateway.load.requests === 2, 'the second beside it', 10_000)
      bench.store.release('acme')
      await Promise.all(pair)
    })
  })

  test('a refusal for the byte rate takes no request token; a request larger than the byte bucket passes when it is full', async () => {
    bench.clock = 1_000_000
    const limits = { perTenant: { ratePerSecond: 1, burst: 2, bytesPerSecond: 2000, burstBytes: 2000 } }
    await withGateway(limits, async () => {
      // Larger than the whole byte bucket: it passes because the bucket is full, and empties it.
      await submit('acme', 1, blob(3000))
      // One request token is left; this one is refused for its bytes and must not take it.
      const e = await refused(submit('acme', 2, blob(100)), 'byte_rate')
      assert.ok(e.retryAfterMs > 0 && e.retryAfterMs <= 1000, `retry after ${e.retryAfterMs} ms`)
      bench.clock += 1000 // 2000 bytes back, and one request token: two in all
      await submit('acme', 3)
      await submit('acme', 4)
      await refused(submit('acme', 5), 'rate')
    })
  })

  test('a clock that goes back takes no token away, and forward again gives none twice', async () => {
    bench.clock = 2_000_000
    await withGateway({ perTenant: { ratePerSecond: 1, burst: 2 } }, async () => {
      await submit('acme', 1)
      await submit('acme', 2)
      bench.clock -= 10_000
      let e = await refused(submit('acme', 3), 'rate')
      assert.equal(e.retryAfterMs, 1000, 'an empty bucket is one token, one second, away: the step back cost nothing')
      bench.clock += 10_000
      e = await refused(submit('acme', 4), 'rate')
      assert.equal(e.retryAfterMs, 1000, 'back where it was: still one second away, not refilled by the round trip')
      bench.clock += 1000
      await submit('acme', 5)
    })
  })

  test('the sweep of idle tenants never forgets one that holds a request: its in-flight bound still holds', async () => {
    bench.clock = 3_000_000
    const operator = await bench.env.natsAs('operator')
    // Room for every request of the crowd below: only acme's own bound may refuse.
    const limits = { perTenant: { maxInFlight: 1 }, maxInFlight: 4096 }
    await withGateway(limits, async (gateway) => {
      bench.store.hold('acme')
      const held = submit('acme', 1)
      await eventually(() => gateway.load.requests === 1, 'acme holds one request')
      bench.clock += 60_000 // acme's buckets are full again while its request is held
      // 1,100 other tenants: more than the 1,024 the gateway knows before it sweeps idle ones. Their bodies are
      // not requests (bus.bad_request): what counts is that each arrives and is admitted.
      for (let i = 0; i < 1100; i++)
        operator.publish(submitSubject(`crowd${i}`, 'edges', 'x'), '{}', { reply: `_INBOX_crowd${i}.r` })
      // Sent after the crowd on the same connection, so it arrives after every one of them.
      const probe = await operator.request(
        submitSubject('acme', 'edges', 's-2'),
        JSON.stringify({ event: intent('acme', 2) }),
        {
          timeout: 10_000,
          noMux: true,
          reply: '_INBOX_acme.probe',
        },
      )
      const reply = probe.json<{ error?: { code: string; details?: { reason?: string } } }>()
      assert.equal(reply.error?.code, 'bus.rate_limited', JSON.stringify(reply))
      assert.equal(reply.error?.details?.reason, 'tenant_in_flight', 'acme still holds its one request')
      bench.store.release('acme')
      await held
    })
  })

  test('stop answers every admitted request before it resolves', async () => {
    await withGateway({}, async (gateway, nc) => {
      bench.store.hold('acme')
      const held = submit('acme', 1)
      await eventually(() => gateway.load.requests === 1, 'one acme request held')
      let stopped = false
      const stopping = gateway.stop().then(() => (stopped = true))
      // stop() has sent its unsubscribe and flush: once this flush is answered, so is that one, and
      // every continuation it started has run by the next turn of the event loop.
      await nc.flush()
      await new Promise((resolve) => setImmediate(resolve))
      assert.equal(stopped, false, 'stop() has not resolved while an admitted request is still being processed')
      bench.store.release('acme')
      await within(stopping, 10_000, 'stop after the held request')
      const ok = await held
      assert.match(ok.position, /^\d+$/, 'the held request was answered')
    })
  })

  test('held refusals are bounded (past the bound they are answered at once) and are all answered at stop', async () => {
    const limits = { perTenant: { ratePerSecond: 1, burst: 1 }, refusalHoldMs: 60_000, maxHeldRefusals: 1 }
    let first: Promise<unknown> | undefined
    await withGateway(limits, async (gateway) => {
      await submit('acme', 1)
      first = submit('acme', 2).then(
        () => assert.fail('expected a refusal'),
        (e: unknown) => e,
      )
      await eventually(() => gateway.refused === 1, 'the first refusal held')
      // The desk holds its one refusal: the next is answered at once, not after a minute.
      await refused(submit('acme', 3), 'rate')
    })
    // The gateway stopped: the refusal it still held was answered then, not left to the client's timeout.
    const e = await within(first!, 5_000, 'the held refusal answered at stop')
    assert.ok(isEventplaneError(e, 'bus.rate_limited'), `bus.rate_limited, got ${String(e)}`)
  })

  test('an infinite burst is a bad setting: startGateway refuses it with bus.config', async () => {
    await assert.rejects(
      startGateway({
        nc: await bench.env.natsAs('gateway'),
        store: bench.store,
        limits: { perTenant: { burst: Number.POSITIVE_INFINITY } },
      }),
      (e: unknown) => isEventplaneError(e, 'bus.config') && /burst/.test(e.message),
    )
  })
})
