import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Msg, NatsConnection } from '@nats-io/transport-node'
import { type TestNatsServer, startNatsServer } from '@eventplane/bus-nats/testing'
import { AckConfirmer } from '../src/ack-confirmer.ts'
import { within } from './fixtures.ts'

/** Subscriptions the client holds (nats.js keeps them on its protocol handler; no public count). */
function subscriptionCount(nc: NatsConnection): number {
  return (nc as unknown as { protocol: { subscriptions: { size(): number } } }).protocol.subscriptions.size()
}

/** Whether `p` has settled by the time a ping round trip on `nc` came back. */
async function settledAfterFlush(p: Promise<unknown>, nc: NatsConnection): Promise<boolean> {
  let settled = false
  p.then(
    () => (settled = true),
    () => (settled = true),
  )
  await nc.flush()
  await new Promise((resolve) => setImmediate(resolve))
  return settled
}

// JetStream answers an ack that carries a reply subject with an empty message; a responder stands in for it
// here, so the test decides when (and whether) the answer comes.
describe('AckConfirmer', () => {
  let server: TestNatsServer
  let nc: NatsConnection
  let jetstreamSide: NatsConnection
  const held: Msg[] = []

  before(async () => {
    server = await startNatsServer({ withAuth: false })
    nc = await server.connect()
    jetstreamSide = await server.connect()
    jetstreamSide.subscribe('test.ack.>', {
      callback: (_, m) => {
        held.push(m)
      },
    })
    await jetstreamSide.flush()
  })
  after(async () => {
    await nc?.close()
    await jetstreamSide?.close()
    await server?.stop()
  })

  test('an ack resolves only once its answer came, and the reply subscription ends after close once none is pending', async () => {
    const before = subscriptionCount(nc)
    const acks = AckConfirmer.for(nc)
    const release = acks.hold()
    const first = acks.ack('test.ack.1', { timeoutMs: 30_000 })
    const second = acks.ack('test.ack.2', { timeoutMs: 30_000 })
    // nc's round trip first: the server has routed both acks when it answers; then the responder's, which
    // receives them before its own answer (the other order raced: 0 of 2 arrived once in a CI run).
    await nc.flush()
    await jetstreamSide.flush()
    assert.equal(held.length, 2, 'both acks reached the server side')
    assert.equal(held[0]!.string(), '+ACK')
    assert.equal(await settledAfterFlush(first, nc), false, 'not resolved before the answer')
    assert.equal(subscriptionCount(nc), before + 1, 'one reply subscription for all acks')

    held.shift()!.respond()
    await within(first, 5000, 'the first ack')
    release()
    assert.equal(subscriptionCount(nc), before + 1, 'still subscribed while an ack is pending')
    held.shift()!.respond()
    await within(second, 5000, 'the second ack')
    assert.equal(subscriptionCount(nc), before, 'the reply subscription ended with the last pending ack')
    assert.equal(acks.pending, 0)
  })

  test('an unanswered ack fails with bus.timeout; one nobody takes fails with bus.unavailable', async () => {
    const acks = AckConfirmer.for(nc)
    const release = acks.hold()
    try {
      await assert.rejects(
        within(acks.ack('test.ack.never', { timeoutMs: 300 }), 5000, 'the unanswered ack'),
        (e: { code?: string }) => e.code === 'bus.timeout',
      )
      held.length = 0
      await assert.rejects(
        within(acks.ack('nobody.listens.here', { timeoutMs: 300 }), 5000, 'the ack nobody takes'),
        (e: { code?: string }) => e.code === 'bus.unavailable',
      )
    } finally {
      release()
    }
  })

  test('a connection has one confirmer: two holders share its reply subscription, which ends with the last release', async () => {
    const before = subscriptionCount(nc)
    assert.equal(AckConfirmer.for(nc), AckConfirmer.for(nc), 'the same confirmer for the same connection')
    const releaseA = AckConfirmer.for(nc).hold()
    const releaseB = AckConfirmer.for(nc).hold()
    const a = AckConfirmer.for(nc).ack('test.ack.a', { timeoutMs: 30_000 })
    const b = AckConfirmer.for(nc).ack('test.ack.b', { timeoutMs: 30_000 })
    await nc.flush()
    await jetstreamSide.flush()
    assert.equal(subscriptionCount(nc), before + 1, 'one reply subscription for both holders')
    for (const m of held.splice(0)) m.respond()
    await within(Promise.all([a, b]), 5000, 'both acks')
    releaseA()
    releaseA()
    assert.equal(subscriptionCount(nc), before + 1, 'kept while the other holder runs (a second release counts once)')
    releaseB()
    assert.equal(subscriptionCount(nc), before, 'ended with the last release')
  })

  test('an ack with a shorter timeout behind a longer pending one still times out on its own deadline', async () => {
    const acks = AckConfirmer.for(nc)
    const release = acks.hold()
    try {
      const long = acks.ack('test.ack.long', { timeoutMs: 60_000 })
      await assert.rejects(
        within(acks.ack('test.ack.short', { timeoutMs: 200 }), 5000, 'the short ack'),
        (e: { code?: string }) => e.code === 'bus.timeout',
      )
      await jetstreamSide.flush()
      for (const m of held.splice(0)) m.respond()
      await within(long, 5000, 'the long ack, answered')
    } finally {
      release()
    }
  })

  test('while held, acks confirmed one after another share one timer, which holds no process, and a later ack still fails on its own deadline', async () => {
    const acks = AckConfirmer.for(nc)
    const release = acks.hold()
    const armed: number[] = []
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
    const timersBefore = timers()
    const realSetTimeout = globalThis.setTimeout
    // Counts the timers armed for a 30 s deadline (the confirmer's; nats.js arms none that long here).
    globalThis.setTimeout = ((fn: () => void, ms?: number) => {
      if (ms !== undefined && ms > 29_000 && ms <= 30_001) armed.push(ms)
      return realSetTimeout(fn, ms)
    }) as typeof setTimeout
    try {
      for (const n of [1, 2, 3]) {
        const ack = acks.ack(`test.ack.seq${n}`, { timeoutMs: 30_000 })
        await nc.flush()
        await jetstreamSide.flush()
        for (const m of held.splice(0)) m.respond()
        await within(ack, 5000, `ack ${n}`)
      }
    } finally {
      globalThis.setTimeout = realSetTimeout
    }
    try {
      assert.equal(armed.length, 1, 'one timer for three acks confirmed in turn, not one armed and cleared per ack')
      assert.equal(timers(), timersBefore, 'the timer left armed does not hold the process (unref)')
      // The first ack's 200 ms timer is left armed after its answer; the second's deadline is later, so that
      // timer, when it fires, must find the second still pending and re-arm for it, not fail it early.
      const early = acks.ack('test.ack.early', { timeoutMs: 200 })
      await nc.flush()
      await jetstreamSide.flush()
      for (const m of held.splice(0)) m.respond()
      await within(early, 5000, 'the early ack')
      const sent = performance.now()
      await assert.rejects(
        within(acks.ack('test.ack.unanswered', { timeoutMs: 600 }), 5000, 'the unanswered ack'),
        (e: { code?: string }) => e.code === 'bus.timeout',
      )
      assert.ok(performance.now() - sent >= 599, "failed on its own deadline, not the earlier timer's")
      held.length = 0
    } finally {
      release()
    }
  })

  test('an ack pending when its connection closes fails at once with bus.unavailable; an ack on a closed connection is refused the same way', async () => {
    const own = await server.connect()
    const acks = AckConfirmer.for(own)
    const pending = acks.ack('test.ack.closing', { timeoutMs: 60_000 })
    await own.flush()
    await own.close()
    await assert.rejects(
      within(pending, 5000, 'the pending ack of a closed connection, long before its 60 s timeout'),
      (e: { code?: string }) => e.code === 'bus.unavailable',
    )
    await assert.rejects(
      async () => acks.ack('test.ack.after-close', { timeoutMs: 60_000 }),
      (e: { code?: string }) => e.code === 'bus.unavailable',
    )
    held.length = 0
  })
})
