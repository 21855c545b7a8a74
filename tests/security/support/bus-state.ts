/**
 * What "nothing happened to the log" means on the bus, observed by the
 * operator: the stream (identity, settings, every count) and every consumer
 * (settings and progress), plus spies that catch any message landing on a
 * subject where nothing may land.
 */
import { STREAM_NAME } from '@eventplane/bus-nats'
import type { ConsumerInfo, JetStreamManager } from '@nats-io/jetstream'
import type { NatsConnection, Subscription } from '@nats-io/transport-node'

export interface BusState {
  stream: Record<string, unknown> | null
  consumers: Record<string, Record<string, unknown>>
}

function consumerState(c: ConsumerInfo): Record<string, unknown> {
  return {
    filter: c.config.filter_subject,
    deliver_subject: c.config.deliver_subject ?? null,
    ack_wait: c.config.ack_wait,
    delivered: c.delivered.stream_seq,
    ack_floor: c.ack_floor.stream_seq,
    num_pending: c.num_pending,
    num_ack_pending: c.num_ack_pending,
    num_redelivered: c.num_redelivered,
  }
}

/** The stream and every consumer, as the operator sees them; `stream: null` when it is gone. */
export async function busState(jsm: JetStreamManager): Promise<BusState> {
  let info: Awaited<ReturnType<JetStreamManager['streams']['info']>>
  try {
    info = await jsm.streams.info(STREAM_NAME)
  } catch {
    return { stream: null, consumers: {} }
  }
  const consumers: BusState['consumers'] = {}
  for await (const c of jsm.consumers.list(STREAM_NAME)) consumers[c.name] = consumerState(c)
  const { state, config, created } = info
  return {
    stream: {
      created,
      subjects: config.subjects,
      deny_delete: config.deny_delete,
      deny_purge: config.deny_purge,
      max_bytes: config.max_bytes,
      messages: state.messages,
      bytes: state.bytes,
      first_seq: state.first_seq,
      last_seq: state.last_seq,
      consumer_count: state.consumer_count,
    },
    consumers,
  }
}

/** Counts every message one connection receives on `subjects`, by subject. */
export class Spy {
  readonly seen = new Map<string, number>()
  readonly #subs: Subscription[]

  constructor(nc: NatsConnection, subjects: readonly string[]) {
    this.#subs = subjects.map((s) =>
      nc.subscribe(s, {
        callback: (_err, m) => void this.seen.set(m.subject, (this.seen.get(m.subject) ?? 0) + 1),
      }),
    )
  }

  count(subject: string): number {
    return this.seen.get(subject) ?? 0
  }

  total(): number {
    return [...this.seen.values()].reduce((a, b) => a + b, 0)
  }

  stop(): void {
    for (const s of this.#subs) if (!s.isClosed()) s.unsubscribe()
  }
}
