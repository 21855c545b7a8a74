import type { RecordedEvent } from '@eventplane/core'
import type { Msg, NatsConnection } from '@nats-io/transport-node'
import { decodeEvent } from './codec.ts'
import { type LiveIterable, liveIterable } from './live-iterable.ts'
import { type Logger, errorFields, silentLogger } from './logger.ts'
import { type LogFilterOptions, logFilter } from './subjects.ts'

/** Live events; `stop()` unsubscribes, `closed` resolves once ended. */
export interface Tail extends LiveIterable<RecordedEvent> {
  /** The subject filter subscribed to. */
  subject: string
}

export interface TailOptions {
  signal?: AbortSignal
  logger?: Logger
}

/**
 * Live events on the log subjects matching `filter` through a plain (core
 * NATS) subscription: no history, no acks, no redelivery: what `evtctl tail`
 * shows. A tenant connection may tail only its own tenant. Messages that do
 * not decode are skipped and logged by subject.
 */
export async function tail(
  nc: NatsConnection,
  filter: LogFilterOptions = {},
  options: TailOptions = {},
): Promise<Tail> {
  const subject = logFilter(filter)
  const logger = options.logger ?? silentLogger
  const sub = nc.subscribe(subject)
  await nc.flush()
  const live = liveIterable(sub, {
    map(msg: Msg): RecordedEvent | undefined {
      try {
        return decodeEvent(msg.data)
      } catch (e) {
        logger.warn({ subject: msg.subject, ...errorFields(e) }, 'undecodable log message skipped')
        return undefined
      }
    },
    halt: () => {
      if (!sub.isClosed()) sub.unsubscribe()
    },
    sourceClosed: sub.closed,
    signal: options.signal,
  })
  return Object.assign(live, { subject })
}
