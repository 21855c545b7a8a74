import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { Checkpoint } from '@eventplane/core'
import { CheckpointWriter } from '../src/relay-checkpoints.ts'

const at = (n: number): Checkpoint => ({ txId: 1n, position: BigInt(n) })

describe('relay checkpoint writer', () => {
  test('one write in flight; checkpoints set meanwhile collapse to the latest; flush waits for it', async () => {
    const written: bigint[] = []
    const holds: (() => void)[] = []
    const writer = new CheckpointWriter(async (c) => {
      await new Promise<void>((resolve) => holds.push(resolve))
      written.push(c.position)
    })
    writer.set(at(1))
    writer.set(at(2))
    writer.set(at(3))
    assert.equal(holds.length, 1, 'a second write waits for the first')
    let flushed = false
    const flush = writer.flush().then(() => (flushed = true))
    holds.shift()!()
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(flushed, false, 'flush waits for the queued checkpoint too')
    assert.equal(holds.length, 1)
    holds.shift()!()
    await flush
    assert.deepEqual(written, [1n, 3n])
  })

  test('a failed write is thrown by the next set or flush, once; nothing queued behind it is written', async () => {
    const written: bigint[] = []
    let fail = true
    let hold!: () => void
    const writer = new CheckpointWriter(async (c) => {
      await new Promise<void>((resolve) => (hold = resolve))
      if (fail) throw new Error('lease lost')
      written.push(c.position)
    })
    writer.set(at(1))
    writer.set(at(2))
    hold()
    await assert.rejects(writer.flush(), /lease lost/)
    assert.deepEqual(written, [])
    fail = false
    writer.set(at(4))
    hold()
    await writer.flush()
    assert.deepEqual(written, [4n])
  })

  test('settle waits for the write in flight, then nothing queued is written and an earlier failure is dropped', async () => {
    const written: bigint[] = []
    const holds: (() => void)[] = []
    let fail = false
    const writer = new CheckpointWriter(async (c) => {
      await new Promise<void>((resolve) => holds.push(resolve))
      if (fail) throw new Error('lease lost')
      written.push(c.position)
    })
    writer.set(at(1))
    writer.set(at(2))
    let settled = false
    const settle = writer.settle().then(() => (settled = true))
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(settled, false, 'settle waits for the write in flight')
    holds.shift()!()
    await settle
    assert.deepEqual(written, [1n], 'the checkpoint queued before settle is not written')
    assert.equal(holds.length, 0)
    // A write that fails, then settle: the failure is not thrown by what comes after.
    fail = true
    writer.set(at(3))
    holds.shift()!()
    await writer.settle()
    fail = false
    writer.set(at(4))
    holds.shift()!()
    await writer.flush()
    assert.deepEqual(written, [1n, 4n])
  })
})
