import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { ProjectionProgress } from '@eventplane/runtime'
import { progressReporter } from '../src/progress.ts'

const at = (events: number, total: number): ProjectionProgress => ({
  projection: 'audit',
  phase: 'rebuild',
  events,
  total,
  rate: 500,
  checkpoint: { txId: 1n, position: BigInt(events) },
})

describe('replay progress', () => {
  test('a terminal gets a bar with percentage, rate and ETA', () => {
    let out = ''
    const reporter = progressReporter({ write: (s: string) => (out += s), isTTY: true, columns: 120 })
    reporter.update(at(100, 1000))
    reporter.update(at(1000, 1000))
    reporter.stop()
    assert.match(out, /replay audit \[[█░]+\] 100% \| 1000\/1000 events \| 500 events\/s \| ETA /)
  })

  test('the bar never shows cli-progress’s cut-off ETA (NFs, LLs): unknown is ?, then real time', () => {
    let out = ''
    const reporter = progressReporter({ write: (s: string) => (out += s), isTTY: true, columns: 120 })
    // No progress between two updates: cli-progress's own estimate is INF or NaN, printed as "NFs" or "LLs".
    const stalled = { ...at(0, 5000), rate: 0 }
    reporter.update(stalled)
    reporter.update(stalled)
    reporter.update({ ...at(2000, 5000), rate: 20 })
    reporter.stop()
    assert.doesNotMatch(out, /ETA [A-Z]{2}s/)
    assert.match(out, /ETA \?/)
    assert.match(out, /ETA 2m30s/)
  })

  test('a pipe gets at most one plain line per interval, and always the last one', () => {
    let out = ''
    const reporter = progressReporter({ write: (s: string) => (out += s) }, 60_000)
    for (let i = 1; i <= 10; i++) reporter.update(at(i * 100, 1000))
    reporter.stop()
    assert.deepEqual(out.trimEnd().split('\n'), [
      'replay audit: 100/1000 events (10%), 500 events/s, ETA 2s',
      'replay audit: 1000/1000 events (100%), 500 events/s, ETA <1s',
    ])
  })
})
