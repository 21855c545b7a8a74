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
