import type { ConsumerInfo, JetStreamManager } from '@nats-io/jetstream'
import { natsFailure, JS_API, isJsApiError } from './nats-errors.ts'
import { STREAM_NAME } from './subjects.ts'

/** JetStream API errors (nats-server errors.json): no such stream, no such consumer. */

/**
 * How far a durable consumer of EVENTPLANE is behind, from the server's
 * consumer info. A controller keeps no checkpoint of its own: what it has
 * not acknowledged is its lag.
 */
export interface ConsumerLag {
  /** The consumer's durable name. */
  name: string
  /** Messages matching its filter not delivered yet. */
  pending: number
  /** Messages delivered and not acknowledged yet (being worked on, or waiting for redelivery). */
  ackPending: number
  /** `pending + ackPending`: what `eventplane_controller_lag_events` and `evtctl status` call its lag. */
  lag: number
  /** Pull requests waiting at the server: a client is attached when > 0 (a hint; a busy client may have none). */
  waitingPulls: number
}

function lagOf(info: ConsumerInfo): ConsumerLag {
  return {
    name: info.name,
    pending: info.num_pending,
    ackPending: info.num_ack_pending,
    lag: info.num_pending + info.num_ack_pending,
    waitingPulls: info.num_waiting,
  }
}

/**
 * The lag of durable consumer `name` of EVENTPLANE; undefined when it (or
 * the stream) does not exist. Needs `$JS.API.CONSUMER.INFO.EVENTPLANE.<name>`
 * (the controller and operator users have it). Other failures are typed
 * (`bus.config` without JetStream, `bus.forbidden`, `bus.unavailable`, …).
 */
export async function consumerLag(jsm: JetStreamManager, name: string): Promise<ConsumerLag | undefined> {
  try {
    return lagOf(await jsm.consumers.info(STREAM_NAME, name))
  } catch (e) {
    if (isJsApiError(e, JS_API.consumerNotFound, JS_API.streamNotFound)) return undefined
    throw natsFailure(e, `read the info of consumer ${name}`)
  }
}

/**
 * The lag of every durable consumer of EVENTPLANE whose name starts with
 * `prefix` (e.g. `ctl_`, the runtime's controller consumers), by name; none
 * when the stream does not exist yet. Needs `$JS.API.CONSUMER.LIST.EVENTPLANE`
 * (the operator user). Failures are typed as for {@link consumerLag}.
 */
export async function consumerLags(jsm: JetStreamManager, prefix = ''): Promise<ConsumerLag[]> {
  const found: ConsumerLag[] = []
  try {
    for await (const info of jsm.consumers.list(STREAM_NAME)) {
      if (info.name.startsWith(prefix)) found.push(lagOf(info))
    }
  } catch (e) {
    if (isJsApiError(e, JS_API.streamNotFound)) return []
    throw natsFailure(e, `list the consumers of stream ${STREAM_NAME}`)
  }
  return found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}
