import type { RecordedEvent } from '@eventplane/core'
import type { Msg, NatsConnection } from '@nats-io/transport-node'
import { type LiveIterable, liveIterable } from './live-iterable.ts'
import { serverWait } from './server-wait.ts'
import { acceptLogMessage, untrustedFields } from './log-message.ts'
import { type Logger, silentLogger } from './logger.ts'
import { type LogFilterOptions, logFilter } from './subjects.ts'

/** Live events; `stop()` unsubscribes, `closed` resolves once ended. */
export interface Tail extends LiveIterable<RecordedEvent> {
  /** The subject filter subscribed to. */
  subject: string
  /** Messages refused so far: not as the relay publishes them (see acceptLogMessage). */
  readonly dropped: number
}

export interface TailOptions {
  signal?: AbortSignal
  logger?: Logger
}

/**
 * Live events on the log subjects matching `filter` through a plain (core
 * NATS) subscription: no history, no acks, no redelivery: what `evtctl tail`
 * shows. A tenant connection may tail only its own tenant. A message that is
 * not an event as the relay publishes it (see acceptLogMessage) is counted in
 * `dropped`, logged by ids and skipped.
 */
export async function tail(
  nc: NatsConnection,
  filter: LogFilterOptions = {},
  options: TailOptions = {},
): Promise<Tail> {
  const subject = logFilter(filter)
  const logger = options.logger ?? silentLogger
  const sub = nc.subscribe(subject)
  // Not for ever: a flush queued while a refused reconnect dials is never answered (see serverWait); closed
  // meanwhile, the tail ends at once (`closed`), for its caller to ask the connection why.
  await serverWait(nc, nc.flush())
  let dropped = 0
  const live = liveIterable(sub, {
    map(msg: Msg): RecordedEvent | undefined {
      try {
        return acceptLogMessage(msg)
      } catch (e) {
        dropped += 1
        logger.warn(untrustedFields(e), 'untrusted log message dropped')
        return undefined
      }
    },
    halt: () => {
      if (!sub.isClosed()) sub.unsubscribe()
    },
    sourceClosed: sub.closed,
    signal: options.signal,
  })
  return Object.defineProperties(live, {
    subject: { value: subject, enumerable: true },
    dropped: { get: () => dropped, enumerable: true },
  }) as Tail
}
