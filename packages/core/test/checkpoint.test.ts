import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { type Checkpoint, START, compareCheckpoints, formatCheckpoint, parseCheckpoint } from '@eventplane/core'

describe('checkpoints', () => {
  test('compare by transaction id, then by position inside one transaction: the order of the gap-safe read', () => {
    // Positions of one transaction share its tx id: a projection that compared tx ids alone would take the
    // second event of a batch for one it had applied, and skip it.
    const at = (txId: bigint, position: bigint): Checkpoint => ({ txId, position })
    const ordered = [START, at(7n, 9n), at(7n, 10n), at(8n, 2n), at(2n ** 63n, 1n)]
    for (const [i, a] of ordered.entries())
      for (const [j, b] of ordered.entries())
        assert.equal(compareCheckpoints(a, b), Math.sign(i - j), `${formatCheckpoint(a)} vs ${formatCheckpoint(b)}`)
  })

  test('the text form round-trips 64-bit values exactly and refuses anything else', () => {
    const c = { txId: 18446744073709551615n, position: 9007199254740993n }
    assert.equal(formatCheckpoint(c), '18446744073709551615:9007199254740993')
    assert.deepEqual(parseCheckpoint(formatCheckpoint(c)), c)
    for (const bad of ['', '1', '1:', ':1', '1:2:3', '-1:2', '1.5:2', ' 1:2'])
      assert.throws(() => parseCheckpoint(bad), RangeError, bad)
  })
})
