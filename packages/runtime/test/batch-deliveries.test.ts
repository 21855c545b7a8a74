import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { test } from 'node:test'
import { ackUnlessStopped, batchDeliveries, runnerStop } from '../src/live-source.ts'
import { prefetch } from '../src/projection/prefetch.ts'

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

test('acks settled before a stop leave no listener on the stop signal; one settled after it neither', async () => {
  const stop = runnerStop()
  for (let i = 0; i < 100; i++) assert.equal(await ackUnlessStopped(Promise.resolve(i), stop.signal), i)
  assert.equal(getEventListeners(stop.signal, 'abort').length, 0, 'no listener per ack left behind')
  stop.abort()
  assert.equal(await ackUnlessStopped(Promise.resolve('late'), stop.signal), 'late')
})

test('prefetch: a read ahead that fails while the caller still works on the batch before is never an unhandled rejection', async () => {
  const unhandled: unknown[] = []
  const onUnhandled = (e: unknown): void => void unhandled.push(e)
  process.on('unhandledRejection', onUnhandled)
  let reads = 0
  // The first read gives a batch; the second (the read ahead) fails while the caller works on the first.
  const source: AsyncIterable<number> = {
    [Symbol.asyncIterator]: () => ({
      next: () =>
        ++reads === 1 ? Promise.resolve({ done: false, value: 1 }) : Promise.reject(new Error('read failed')),
    }),
  }
  try {
    await assert.rejects(async () => {
      for await (const _ of prefetch(source)) {
        await turn() // the caller's work: the read ahead has failed meanwhile, and node looked for unhandled ones
        await turn()
        throw new Error('the caller stops')
      }
    }, /the caller stops/)
    await turn()
  } finally {
    process.off('unhandledRejection', onUnhandled)
  }
  assert.equal(reads, 2)
  assert.deepEqual(unhandled, [])
})
