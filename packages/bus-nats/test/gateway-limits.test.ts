import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { submitIntent } from '../src/gateway-client.ts'
import { eventually } from './fixtures.ts'
import { rateLimited, useAdmissionBench } from './support/admission-bench.ts'

describe('gateway limits: per-tenant rate, requests and bytes in flight, fair turns', () => {
  const bench = useAdmissionBench('ep_gw_limits', { category: 'limits', type: 'limited' })
  const { connection, intent, submit, withGateway } = bench
  const refused = (p: Promise<unknown>) => rateLimited(p)

  async function rows(tenant: string): Promise<number> {
    const [row] = await bench.env.db.admin<{ n: number }[]>`
      select count(*)::int as n from eventplane.events where tenant_id = ${tenant} and category = 'limits'`
    return row!.n
  }

  /** Runs `fn` against a gateway with `limits` (answering refusals at once unless told), then stops it. */
  test('the request bucket refills at its rate; a refusal says exactly when the next token comes and writes nothing', async () => {
    await withGateway({ perTenant: { ratePerSecond: 2, burst: 2 } }, async (gateway) => {
      const before = await rows('acme')
      await submit('acme', 1)
      await submit('acme', 2)
      let e = await refused(submit('acme', 3))
      assert.equal(e.retryAfterMs, 500, 'one token at 2/s is 500 ms away')
      assert.equal(e.details.reason, 'rate')
      bench.clock += 499
      e = await refused(submit('acme', 4))
      assert.equal(e.retryAfterMs, 1)
      bench.clock += 1
      await submit('acme', 5)
      assert.equal(await rows('acme'), before + 3, 'only admitted requests were written')
      bench.clock += 60_000 // a long pause refills to the burst, never beyond
      await submit('acme', 6)
      await submit('acme', 7)
      await refused(submit('acme', 8))
      assert.equal(gateway.refused, 3)
    })
  })

  test('limits are per tenant: one tenant over its own does not touch another, and named tenants get their own', async () => {
    const limits = { perTenant: { ratePerSecond: 1, burst: 1 }, tenants: { globex: { burst: 5 } } }
    await withGateway(limits, async () => {
      await submit('acme', 10)
      await refused(submit('acme', 11))
      for (let n = 10; n < 15; n++) await submit('globex', n)
      const e = await refused(submit('globex', 15))
      assert.equal(e.retryAfterMs, 1000, 'globex keeps the default rate of 1/s')
    })
  })

  test('the byte bucket limits bytes per second: a large request waits for its bytes, a small one passes', async () => {
    const blob = 'x'.repeat(40 * 1024)
    await withGateway({ perTenant: { bytesPerSecond: 100 * 1024, burstBytes: 100 * 1024 } }, async () => {
      await submit('acme', 20, { blob })
      await submit('acme', 21, { blob })
      const e = await refused(submit('acme', 22, { blob }))
      assert.equal(e.details.reason, 'byte_rate')
      assert.ok(e.retryAfterMs > 100 && e.retryAfterMs < 400, `retry after ${e.retryAfterMs} ms`)
      await submit('acme', 23)
      bench.clock += e.retryAfterMs + 10 // and the small one's bytes
      await submit('acme', 24, { blob })
    })
  })

  test('the byte bucket counts the data as the log stores it: small requests of long numbers use up the bucket', async () => {
    // 200 × 1e300 is 1.4 KB of JSON and 60 KB in the log (each number 301 digits): the shared stream fills
    // by the stored size, so the tenant's byte rate is charged that, not only the body.
    const numbers = Array<number>(200).fill(1e300)
    await withGateway({ perTenant: { bytesPerSecond: 100 * 1024, burstBytes: 100 * 1024 } }, async () => {
      await submit('acme', 25, { numbers })
      await submit('acme', 26, { numbers })
      const e = await refused(submit('acme', 27))
      assert.equal(e.details.reason, 'byte_rate')
      await submit('globex', 25, { numbers }) // another tenant's bucket is its own
      bench.clock += e.retryAfterMs
      await submit('acme', 27)
    })
  })

  test('requests in flight are bounded per tenant: past it a request is refused at once, another tenant is served', async () => {
    await withGateway({ perTenant: { maxInFlight: 3, maxConcurrent: 1 } }, async (gateway) => {
      bench.store.hold('acme')
      const held = [30, 31, 32].map((n) => submit('acme', n))
      await eventually(() => gateway.load.requests === 3, 'three acme requests in flight')
      const e = await refused(submit('acme', 33))
      assert.equal(e.details.reason, 'tenant_in_flight')
      await submit('globex', 30) // acme's three are stuck; globex is not behind them
      bench.store.release('acme')
      await Promise.all(held)
    })
  })

  test('request bytes in flight are bounded per tenant and in total', async () => {
    const blob = 'x'.repeat(60 * 1024)
    const limits = { perTenant: { maxBytesInFlight: 100 * 1024, maxConcurrent: 4 }, maxInFlight: 3 }
    await withGateway(limits, async (gateway) => {
      bench.store.hold('acme')
      const first = submit('acme', 40, { blob })
      await eventually(() => gateway.load.requests === 1, 'the first large acme request in flight')
      const e = await refused(submit('acme', 41, { blob }))
      assert.equal(e.details.reason, 'tenant_bytes')
      const small = [42, 43].map((n) => submit('acme', n))
      await eventually(() => gateway.load.requests === 3, 'two small ones beside it')
      assert.ok(gateway.load.bytes < 100 * 1024, `bytes held ${gateway.load.bytes}`)
      const full = await refused(submit('globex', 40))
      assert.equal(full.details.reason, 'in_flight', 'the gateway as a whole holds its maximum')
      bench.store.release('acme')
      await Promise.all([first, ...small])
      assert.equal(gateway.load.requests, 0)
    })
  })

  test("a tenant's stuck requests never take every slot: it runs at most maxConcurrent at once", async () => {
    await withGateway({ concurrency: 2, perTenant: { maxConcurrent: 1 } }, async (gateway) => {
      bench.store.started.length = 0
      bench.store.hold('acme')
      const stuck = [70, 71, 72].map((n) => submit('acme', n))
      await eventually(() => gateway.load.requests === 3, 'three acme requests held')
      await submitIntent(connection('globex'), intent('globex', 70), { timeoutMs: 3000 })
      assert.deepEqual(
        bench.store.started,
        ['acme:70', 'globex:70'],
        'one acme request started, the others wait their turn',
      )
      bench.store.release('acme')
      await Promise.all(stuck)
    })
  })

  test("tenants take turns: one tenant's queue does not go before another's request", async () => {
    await withGateway({ concurrency: 1 }, async (gateway) => {
      bench.store.started.length = 0
      bench.store.hold('acme')
      const queued = [50, 51, 52, 53, 54].map((n) => submit('acme', n))
      await eventually(() => gateway.load.requests === 5, 'five acme requests held')
      const theirs = submit('globex', 50)
      await eventually(() => gateway.load.requests === 6, "globex's request queued")
      bench.store.release('acme')
      await Promise.all([...queued, theirs])
      assert.deepEqual(bench.store.started, ['acme:50', 'acme:51', 'globex:50', 'acme:52', 'acme:53', 'acme:54'])
    })
  })

  test('a refusal is held before it is answered (a tarpit), and its retry-after counts from the answer', async () => {
    await withGateway({ perTenant: { ratePerSecond: 1, burst: 1 }, refusalHoldMs: 400 }, async () => {
      await submit('acme', 60)
      const sent = performance.now()
      const e = await refused(submit('acme', 61))
      const waited = performance.now() - sent
      assert.ok(waited >= 190, `answered after ${Math.round(waited)} ms, at least half the hold`)
      assert.ok(e.retryAfterMs <= 1000 - 190, `retry-after ${e.retryAfterMs} ms is what is left after the hold`)
    })
  })
})
