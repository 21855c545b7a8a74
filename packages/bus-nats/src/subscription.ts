import { type RecordedEvent, EventplaneError, Unavailable, validateName } from '@eventplane/core'
import {
  type ConsumerInfo,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  AckPolicy,
  DeliverPolicy,
} from '@nats-io/jetstream'
import { type NatsConnection, nanos } from '@nats-io/transport-node'
import { AckConfirmer } from './ack-confirmer.ts'
import { type AckRetryOptions, resendAck } from './ack-retry.ts'
import { headerValue } from './codec.ts'
import { type LiveIterable, liveIterable } from './live-iterable.ts'
import { acceptLogMessage, untrustedFields } from './log-message.ts'
import { type Logger, silentLogger } from './logger.ts'
import { natsDriverError, JS_API, isJsApiError } from './nats-errors.ts'
import { TRACEPARENT_HEADER } from './ops/trace-context.ts'
import { type LogFilterOptions, STREAM_NAME, logFilter } from './subjects.ts'

export interface EnsureConsumerOptions {
  /** Durable name; ASCII letters, digits, `_` and `-`. */
  name: string
  /** What the consumer sees: one filter subject over the log, e.g. `{ tenant: 'acme' }` → `eventplane.*.acme.>`. */
  filter: LogFilterOptions
  /** 'all' (default) starts at the first event; 'new' at events published after creation. */
  deliver?: 'all' | 'new'
  /** Time to process a message before it is redelivered. Default 30 s. */
  ackWaitMs?: number
  /** Deliveries before the server gives up on a message; default unlimited (-1). */
  maxDeliver?: number
  /** Un-acked messages the server hands out at once. Default 1000. */
  maxAckPending?: number
}

/** JetStream API errors (nats-server errors.json): exists with another config, or not found. */

/**
 * Creates (or finds) a durable pull consumer on EVENTPLANE with explicit acks
 * and one filter subject, through the filtered create subject
 * `$JS.API.CONSUMER.CREATE.EVENTPLANE.<name>.<filter>`. An existing consumer
 * with the same name and filter is returned as is; one with another filter
 * fails with `bus.bad_request`. It is looked up first, because nats-server
 * 2.9 treats a create of an existing consumer as an update and would
 * silently re-point its filter (a tenant's consumer onto another tenant).
 * A request the server refuses (a tenant connection: tenants cannot create
 * consumers) fails with `bus.forbidden`.
 */
export async function ensureConsumer(jsm: JetStreamManager, options: EnsureConsumerOptions): Promise<ConsumerInfo> {
  const name = validateName('consumer', options.name)
  try {
    return await findOrCreateConsumer(jsm, name, options)
  } catch (e) {
    // Not there yet: the relay (or `evtctl tenant add`) creates it; a process started first waits for it.
    if (isJsApiError(e, JS_API.streamNotFound))
      throw new Unavailable('bus.unavailable', `stream ${STREAM_NAME} does not exist yet (a relay creates it)`, {
        cause: e,
      })
    const failure = natsDriverError(e, `create or inspect consumer ${name}`)
    throw failure?.code === 'bus.forbidden' ? failure : e
  }
}

async function findOrCreateConsumer(
  jsm: JetStreamManager,
  name: string,
  options: EnsureConsumerOptions,
): Promise<ConsumerInfo> {
  const filter = logFilter(options.filter)
  const existing = (): Promise<ConsumerInfo> =>
    jsm.consumers.info(STREAM_NAME, name).then((info) => {
      if (info.config.filter_subject !== filter)
        throw new EventplaneError(
          'bus.bad_request',
          `consumer ${name} exists with filter ${info.config.filter_subject ?? '(none)'}, not ${filter}`,
        )
      return info
    })
  try {
    return await existing()
  } catch (e) {
    if (!isJsApiError(e, JS_API.consumerNotFound)) throw e
  }
  try {
    return await jsm.consumers.add(STREAM_NAME, {
      durable_name: name,
      filter_subject: filter,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: options.deliver === 'new' ? DeliverPolicy.New : DeliverPolicy.All,
      ack_wait: nanos(options.ackWaitMs ?? 30_000),
      max_deliver: options.maxDeliver ?? -1,
      max_ack_pending: options.maxAckPending ?? 1000,
    })
  } catch (e) {
    // Another process created it between our lookup and create: check theirs instead.
    if (!isJsApiError(e, JS_API.consumerExists, JS_API.consumerNameExists)) throw e
    return existing()
  }
}

/** One delivered event. Ack after processing; an un-acked delivery comes back after the consumer's ack wait. */
export interface Delivery {
  event: RecordedEvent
  /** Stream sequence of the message. */
  seq: number
  /** 1 on the first delivery. */
  deliveryCount: number
  redelivered: boolean
  /**
   * Acks and waits for the server to confirm it (a lost ack would mean a redelivery). An unconfirmed ack is
   * sent again (the same ack: see `SubscribeOptions.ackRetry`); it fails once those sends failed, the
   * connection closed or the consumer is gone. Calling it again returns the first call's promise.
   */
  ack(): Promise<void>
  /** Asks for redelivery, after `delayMs` if given. */
  nak(delayMs?: number): void
  /** Never deliver this message again. */
  term(): void
  /** Extends the ack wait while a slow handler works. */
  working(): void
  /** The relay's W3C `traceparent` header: a consumer's span hangs under it. */
  traceparent: string | undefined
}

/**
 * Deliveries in stream order; `stop()` stops fetching (un-acked deliveries are redelivered later), `closed`
 * resolves once ended. Iteration throws when the consumer or its stream is deleted.
 */
export interface Subscription extends LiveIterable<Delivery> {
  /** Messages refused and terminated so far: not as the relay publishes them (see acceptLogMessage). */
  readonly dropped: number
}

export interface SubscribeOptions {
  /** Name of an existing consumer (see ensureConsumer). */
  consumer: string
  signal?: AbortSignal
  /** Messages requested per pull. Default 100. */
  batch?: number
  logger?: Logger
  /** How often an unconfirmed ack is sent again: default 3 sends, 100 ms then 200 ms apart (see resendAck). */
  ackRetry?: AckRetryOptions
}

/**
 * Consumes a durable pull consumer as an async iterable of deliveries, in
 * stream order. Needs only the consumer's info, pull and ack subjects, the
 * grants a tenant account has. A message that is not an event as the relay
 * publishes it (see acceptLogMessage) is terminated, counted in `dropped` and
 * logged by ids (sequence, subject, event id; never content), never yielded.
 */
export async function subscribe(js: JetStreamClient, options: SubscribeOptions): Promise<Subscription> {
  const name = validateName('consumer', options.consumer)
  const logger = options.logger ?? silentLogger
  const consumer = await js.consumers.get(STREAM_NAME, name)
  // Without abort_on_missing_resource nats.js waits silently forever for a deleted consumer (a deleted
  // stream takes its consumers with it); ending the iterable with an error lets the caller recreate it.
  // When the deletion is not announced (a pull in flight meets no responder), only two missed idle
  // heartbeats reveal it: 10 s pulls (5 s heartbeats) bound that at ~10 s instead of nats.js's 30 s.
  const messages: ConsumerMessages = await consumer.consume({
    max_messages: options.batch ?? 100,
    expires: 10_000,
    abort_on_missing_resource: true,
  })
  let dropped = 0
  const acks = connectionAcks(js, {
    consumer: name,
    logger,
    retry: options.ackRetry ?? {},
    consumerExists: sharedWhilePending(() =>
      consumer.info(false).then(
        () => true,
        (e: unknown) => (isJsApiError(e, JS_API.consumerNotFound, JS_API.streamNotFound) ? false : undefined),
      ),
    ),
  })
  const live = liveIterable(messages, {
    map(msg: JsMsg): Delivery | undefined {
      try {
        return new JsDelivery(msg, acceptLogMessage(msg), acks)
      } catch (e) {
        dropped += 1
        logger.error({ consumer: name, seq: msg.seq, ...untrustedFields(e) }, 'untrusted log message terminated')
        // No reason text: nats-server 2.9 takes only a bare `+TERM` as a term (a reason came with 2.10).
        msg.term()
        return undefined
      }
    },
    halt: () => messages.stop(),
    sourceClosed: messages.closed(),
    signal: options.signal,
  })
  // Acks may still be confirmed after the feed ended (a runner acks the batch it applied): the confirmer's
  // reply subscription ends only once they settled and no other subscription of the connection holds it.
  void live.closed.then(() => acks?.release())
  return Object.defineProperty(live, 'dropped', { get: () => dropped, enumerable: true }) as Subscription
}

/**
 * `lookup`, asked once for every caller while one call is in flight: a batch of acks that time out together
 * (a projection acks up to 256 at once) makes one consumer-info request, not one per ack.
 */
function sharedWhilePending<T>(lookup: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | undefined
  return () => {
    inFlight ??= lookup().finally(() => {
      inFlight = undefined
    })
    return inFlight
  }
}

/** A subscription's hold on its connection's confirmer: acks that are confirmed, and retried when they are not. */
interface ConnectionAcks {
  ack(reply: string, seq: number, eventId: string): Promise<void>
  release(): void
}

interface ConnectionAcksOptions {
  consumer: string
  logger: Logger
  retry: AckRetryOptions
  consumerExists(): Promise<boolean | undefined>
}

/**
 * A hold on the confirmer of the client's connection (nats.js keeps the connection on the client), shared by
 * every subscription on it, with the client's timeout for each send of an ack; undefined to use `ackAck`.
 */
function connectionAcks(js: JetStreamClient, options: ConnectionAcksOptions): ConnectionAcks | undefined {
  const nc = (js as { nc?: NatsConnection }).nc
  if (nc === undefined || typeof nc.publish !== 'function') return undefined
  const confirmer = AckConfirmer.for(nc)
  const ackOptions = { timeoutMs: js.getOptions().timeout ?? 5000 }
  const { consumer, logger, retry, consumerExists } = options
  const connectionClosed = (): boolean => nc.isClosed()
  return {
    // The confirmer's promise itself on the way that matters (confirmed at once): the retry's context is
    // built only for an ack whose first send failed.
    ack: (reply, seq, eventId) =>
      confirmer.ack(reply, ackOptions).catch((first: unknown) =>
        resendAck(
          first,
          {
            send: () => confirmer.ack(reply, ackOptions),
            connectionClosed,
            consumerExists,
            ids: { consumer, seq, event_id: eventId },
            logger,
          },
          retry,
        ),
      ),
    release: confirmer.hold(),
  }
}

/**
 * A delivery as a class: its methods are shared on the prototype, not five closures (and a settle flag's
 * closure) made per message.
 */
const SETTLED = Promise.resolve()

class JsDelivery implements Delivery {
  readonly event: RecordedEvent
  readonly seq: number
  readonly deliveryCount: number
  readonly redelivered: boolean
  readonly traceparent: string | undefined
  readonly #msg: JsMsg
  readonly #acks: ConnectionAcks | undefined
  // Settling is final, as in nats.js (only `working` may repeat): an ack sent by the confirmer bypasses
  // the JsMsg's own flag, so it is kept here. The retries of an unconfirmed ack are inside the one `ack()`.
  #settled = false
  /** The ack's outcome, for a second `ack()` call. */
  #acked: Promise<void> | undefined

  constructor(msg: JsMsg, event: RecordedEvent, acks: ConnectionAcks | undefined) {
    this.#msg = msg
    this.#acks = acks
    this.event = event
    const info = msg.info
    this.seq = info.streamSequence
    this.deliveryCount = info.deliveryCount
    this.redelivered = info.deliveryCount > 1
    const headers = msg.headers
    this.traceparent = (headers && headerValue(headers, TRACEPARENT_HEADER)) || undefined
  }

  #settle(): boolean {
    if (this.#settled) return false
    this.#settled = true
    return true
  }

  ack(): Promise<void> {
    if (!this.#settle()) return this.#acked ?? SETTLED
    // JsMsgImpl has the delivery's reply subject (the ack subject); the JsMsg type does not show it.
    const reply = (this.#msg as { reply?: string }).reply
    // nats.js's own `ackAck` (a client without its connection) sends once: it refuses a second ack.
    this.#acked =
      this.#acks !== undefined && reply
        ? this.#acks.ack(reply, this.seq, this.event.event_id)
        : this.#msg.ackAck().then(() => undefined)
    return this.#acked
  }

  nak(delayMs?: number): void {
    if (this.#settle()) this.#msg.nak(delayMs)
  }

  term(): void {
    if (this.#settle()) this.#msg.term()
  }

  working(): void {
    if (!this.#settled) this.#msg.working()
  }
}
