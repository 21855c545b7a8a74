import assert from 'node:assert/strict'
import { test } from 'node:test'
import { batchDeliveries } from '../src/live-source.ts'

/** Lets promise callbacks and the generator's steps run (setImmediate is not mocked). */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

test('a steady stream faster than the linger is cut into batches lingerMs after their first delivery, none lost', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  // One delivery every 2 ms of (mocked) time, forever: faster than the 5 ms linger.
  let n = 0
  const source: AsyncIterable<number> = {
    [Symbol.asyncIterator]: () => ({
      next: () =>
        new Promise<IteratorResult<number>>((resolve) => setTimeout(() => resolve({ done: false, value: n++ }), 2)),
    }),
  }
  const batches = batchDeliveries(source, 256, 5)
  const seen: number[][] = []
  let now = 0
  for (let b = 0; b < 3; b++) {
    let batch: number[] | undefined
    void batches.next().then((r) => (batch = r.value as number[]))
    const askedAt = now
    while (batch === undefined && now - askedAt < 1000) {
      t.mock.timers.tick(1)
      now++
      for (let i = 0; i < 10; i++) await turn()
    }
    assert.ok(batch !== undefined, `batch ${b} came within 1 s of mocked time`)
    // Its first delivery came at most 2 ms after asking; the batch must follow 5 ms after that one.
    assert.ok(now - askedAt <= 2 + 5 + 1, `batch ${b} yielded ${now - askedAt} ms after it was asked for`)
    seen.push(batch)
  }
  assert.deepEqual(
    seen.flat(),
    seen.flat().map((_, i) => i),
    'every delivery in order, the one pending at the cut carried into the next batch',
  )
})

test('batches hold at most max deliveries, and the last one is yielded when the source ends', async () => {
  async function* five(): AsyncGenerator<number> {
    for (let i = 0; i < 5; i++) yield i
  }
  const seen: number[][] = []
  // The linger never runs out here: each batch ends at max, the last one at the source's end.
  for await (const batch of batchDeliveries(five(), 2, 60_000)) seen.push(batch)
  assert.deepEqual(seen, [[0, 1], [2, 3], [4]])
})
