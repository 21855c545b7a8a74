import type { LiveDelivery, LiveSource, LiveSubscription } from '../src/live-source.ts'

/**
 * `live`, each delivery it hands out passed through `each` first: a test's view of what a runner gets (`each`
 * records it and returns it as it is) or a change of what the runner's acks, naks and terminates do (`each`
 * returns {@link overriding}'s copy). Its prepare and ack wait are `live`'s.
 */
export function mapDeliveries(live: LiveSource, each: (d: LiveDelivery) => LiveDelivery): LiveSource {
  return {
    prepare: () => live.prepare(),
    ackWaitMs: () => live.ackWaitMs?.(),
    async open(signal): Promise<LiveSubscription> {
      const sub = await live.open(signal)
      return {
        stop: () => sub.stop(),
        closed: sub.closed,
        async *[Symbol.asyncIterator]() {
          for await (const d of sub) yield each(d)
        },
      }
    },
  }
}

/** `live`, with every delivery it hands out reported to `seen` first. */
export function watchedSource(live: LiveSource, seen: (d: LiveDelivery) => void): LiveSource {
  return mapDeliveries(live, (d) => {
    seen(d)
    return d
  })
}

/**
 * `live`, each intent's settlement (`ack`, `nak`, `term`) pushed to `settled` before it goes through (the runner's
 * own internal events are settled unseen); `term` does the terminate: the delivery's own, unless a test loses some.
 */
export function recordingSettlements(
  live: LiveSource,
  settled: { push(settlement: 'ack' | 'nak' | 'term'): unknown },
  term: (d: LiveDelivery) => void = (d) => d.term(),
): LiveSource {
  return mapDeliveries(live, (d) =>
    overriding(d, {
      term: () => {
        if (d.event.kind === 'intent') settled.push('term')
        term(d)
      },
      nak: (ms) => {
        if (d.event.kind === 'intent') settled.push('nak')
        d.nak(ms)
      },
      ack: () => {
        if (d.event.kind === 'intent') settled.push('ack')
        return d.ack()
      },
    }),
  )
}

/**
 * `live`, each delivery's settlement reported to `record(d, how)` before it goes through. An ack for which
 * `loseAck(d)` is true becomes a nak, recorded as one: a lost ack, so the bus delivers the event again (a
 * redelivery, as after a worker's restart).
 */
export function recordingEach(
  live: LiveSource,
  record: (d: LiveDelivery, how: 'ack' | 'nak' | 'term') => void,
  loseAck: (d: LiveDelivery) => boolean = () => false,
): LiveSource {
  return mapDeliveries(live, (d) =>
    overriding(d, {
      ack: () => {
        if (loseAck(d)) {
          record(d, 'nak')
          return d.nak()
        }
        record(d, 'ack')
        return d.ack()
      },
      nak: (ms) => {
        record(d, 'nak')
        d.nak(ms)
      },
      term: () => {
        record(d, 'term')
        d.term()
      },
    }),
  )
}

/** `d` with the given methods in place of its own; the rest call through to `d`. */
export function overriding(
  d: LiveDelivery,
  methods: Partial<Pick<LiveDelivery, 'ack' | 'nak' | 'term' | 'working'>>,
): LiveDelivery {
  return {
    event: d.event,
    deliveryCount: d.deliveryCount,
    redelivered: d.redelivered,
    traceparent: d.traceparent,
    ack: () => d.ack(),
    nak: (delayMs) => d.nak(delayMs),
    term: () => d.term(),
    working: () => d.working?.(),
    ...methods,
  }
}
