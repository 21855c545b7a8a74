import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { NatsConnection } from '@nats-io/transport-node'
import {
  type DeadlineTimers,
  SERVER_WAIT_MS,
  STALLED_WAIT_MS,
  type ServerWaitOutcome,
  StopWaits,
  serverWait,
} from '../src/server-wait.ts'
import { type TestNatsServer, startNatsServer } from '../src/testing/index.ts'

/**
 * Deadline timers the test fires itself, in the order node's event loop would: `fireDeadline()` is the timers
 * phase reaching the deadline, `fireAfterIo()` the check phase after that turn's sockets were read. Nothing
 * fires on its own: the interleaving of the deadline and the answer is the test's, never a sleep's.
 */
function heldTimers(): DeadlineTimers & {
  fireDeadline(): void
  fireAfterIo(): void
  pending(): { deadline: boolean; afterIo: boolean }
  /** The last deadline set, in ms. */
  lastMs(): number | undefined
} {
  let deadline: (() => void) | undefined
  let afterIo: (() => void) | undefined
  let lastMs: number | undefined
  return {
    after(ms, fn) {
      lastMs = ms
      deadline = fn
      return () => {
        deadline = undefined
      }
    },
    afterIo(fn) {
      afterIo = fn
      return () => {
        afterIo = undefined
      }
    },
    fireDeadline() {
      const fn = deadline
      deadline = undefined
      assert.ok(fn, 'a deadline to fire')
      fn()
    },
    fireAfterIo() {
      const fn = afterIo
      afterIo = undefined
      fn?.()
    },
    pending: () => ({ deadline: deadline !== undefined, afterIo: afterIo !== undefined }),
    lastMs: () => lastMs,
  }
}

/** Lets every promise reaction queued so far run (what node does between two callbacks of its loop). */
async function settleMicrotasks(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve()
}

function controlled(): { op: Promise<void>; answer: () => void } {
  let answer!: () => void
  const op = new Promise<void>((resolve) => (answer = resolve))
  return { op, answer }
}

/** Watches a wait's outcome without awaiting it: undefined while it is pending. */
function watch(wait: Promise<ServerWaitOutcome>): () => ServerWaitOutcome | undefined {
  let outcome: ServerWaitOutcome | undefined
  void wait.then((o) => (outcome = o))
  return () => outcome
}

describe('serverWait: the deadline against the answer', () => {
  let server: TestNatsServer
  let nc: NatsConnection

  before(async () => {
    server = await startNatsServer({ withAuth: false })
    nc = await server.connect('operator')
  })
  after(async () => {
    await nc?.close()
    await server?.stop()
  })

  test('an answer read in the turn the deadline fires in settles the wait: the deadline is judged after that I/O', async () => {
    const timers = heldTimers()
    const { op, answer } = controlled()
    const outcome = watch(serverWait(nc, op, 2000, timers))
    // The loop lagged past the deadline: its timer runs first in the turn, then the turn reads the answer.
    timers.fireDeadline()
    await settleMicrotasks()
    assert.equal(outcome(), undefined, 'not timed out before the I/O of its turn was read')
    answer()
    await settleMicrotasks()
    assert.equal(outcome(), 'settled')
    assert.deepEqual(timers.pending(), { deadline: false, afterIo: false }, 'the verdict is cancelled')
  })

  test('an answer after that turn is late: the wait times out, and the answer then changes nothing', async () => {
    const timers = heldTimers()
    const { op, answer } = controlled()
    const outcome = watch(serverWait(nc, op, 2000, timers))
    timers.fireDeadline()
    await settleMicrotasks()
    timers.fireAfterIo()
    await settleMicrotasks()
    assert.equal(outcome(), 'timed_out')
    answer()
    await settleMicrotasks()
    assert.equal(outcome(), 'timed_out')
  })

  test('an answer before the deadline settles the wait and cancels its timer', async () => {
    const timers = heldTimers()
    const { op, answer } = controlled()
    const wait = serverWait(nc, op, 2000, timers)
    assert.deepEqual(timers.pending(), { deadline: true, afterIo: false })
    answer()
    assert.equal(await wait, 'settled')
    assert.deepEqual(timers.pending(), { deadline: false, afterIo: false }, 'no timer left to fire after it')
  })

  test("node's timers: a wait that settled leaves no timer or immediate behind", async () => {
    const handles = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'Immediate').length
    // Settled in microtasks only: no turn of the loop between the two counts for another file's timers to move.
    const before = handles()
    assert.equal(await serverWait(nc, Promise.resolve(), 60_000), 'settled')
    assert.equal(handles(), before)
  })

  test('a connection that closes ends the wait as closed, its timers cancelled', async () => {
    const own = await server.connect('operator')
    const timers = heldTimers()
    const { op } = controlled()
    const wait = serverWait(own, op, 2000, timers)
    await own.close()
    assert.equal(await wait, 'closed')
    assert.deepEqual(timers.pending(), { deadline: false, afterIo: false })
  })

  test("one stop's waits: answered ones keep the whole bound; after one timed out, each later one gets STALLED_WAIT_MS", async () => {
    const timers = heldTimers()
    const waits = new StopWaits(timers)
    // A healthy stop: every wait answered, each with SERVER_WAIT_MS, and a relay's drain keeps its own bound.
    for (let i = 0; i < 2; i++) {
      const { op, answer } = controlled()
      const wait = waits.wait(nc, op)
      assert.equal(timers.lastMs(), SERVER_WAIT_MS)
      answer()
      assert.deepEqual(await wait, { outcome: 'settled', waitedMs: SERVER_WAIT_MS })
    }
    assert.equal(waits.ms(5000), 5000)
    // The server stops answering: the first wait it leaves unanswered takes the whole bound, and marks the stop.
    const unanswered = watch(waits.wait(nc, controlled().op).then((w) => w.outcome))
    timers.fireDeadline()
    await settleMicrotasks()
    timers.fireAfterIo()
    await settleMicrotasks()
    assert.equal(unanswered(), 'timed_out')
    assert.equal(waits.isStalled, true)
    assert.equal(waits.ms(SERVER_WAIT_MS), STALLED_WAIT_MS, "a relay's last drain is cut short")
    const { op, answer } = controlled()
    const later = waits.wait(nc, op)
    assert.equal(timers.lastMs(), STALLED_WAIT_MS, 'a later wait of the stop is a short one')
    answer()
    assert.deepEqual(await later, { outcome: 'settled', waitedMs: STALLED_WAIT_MS }, 'an answer in time still counts')
  })
})
