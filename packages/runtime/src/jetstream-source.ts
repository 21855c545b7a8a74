import { type EventKind, EventplaneError, Unavailable } from '@eventplane/core'
import {
  type AckRetryOptions,
  type LogFilterOptions,
  type Logger,
  consumerLag,
  ensureConsumer,
  subscribe,
} from '@eventplane/bus-nats'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import type { LiveSource, LiveSubscription } from './live-source.ts'

export interface JetStreamSourceOptions {
  nc: NatsConnection
  /** Durable consumer name (kept across restarts; tenants may only use their listed names). */
  consumer: string
  filter: LogFilterOptions
  /** Where a newly created consumer starts: 'new' for projections (they catch up from PostgreSQL), 'all' by default. */
  deliver?: 'all' | 'new'
  ackWaitMs?: number
  /**
   * The server's delivery limit (default unlimited). A controller's source has none (see
   * `unlimitedDeliveries`).
   */
  maxDeliver?: number
  /**
   * Refuse a consumer with a delivery limit (`bus.config` from `prepare`), also one that existed: at the
   * limit JetStream stops delivering an event without telling anyone, and every restart of a worker holding
   * it is a delivery. Set by `controllerLiveSource`: the runner parks an event itself (`reconcile_failed`).
   */
  unlimitedDeliveries?: boolean
  maxAckPending?: number
  /** Messages requested per pull. */
  batch?: number
  logger?: Logger
  /** How an unconfirmed ack is sent again (bus-nats default: 3 sends, 100 ms then 200 ms apart). */
  ackRetry?: AckRetryOptions
}

/** A live source on a durable JetStream pull consumer of the EVENTPLANE stream. */
export function jetStreamSource(options: JetStreamSourceOptions): LiveSource {
  let ackWaitMs: number | undefined
  return {
    async prepare() {
      const jsm = await jetstreamManager(options.nc)
      const info = await ensureConsumer(jsm, {
        name: options.consumer,
        filter: options.filter,
        ...(options.deliver ? { deliver: options.deliver } : {}),
        ...(options.ackWaitMs ? { ackWaitMs: options.ackWaitMs } : {}),
        ...(options.maxDeliver ? { maxDeliver: options.maxDeliver } : {}),
        ...(options.maxAckPending ? { maxAckPending: options.maxAckPending } : {}),
      })
      const limit = info.config.max_deliver ?? -1
      if (options.unlimitedDeliveries && limit > 0)
        throw new EventplaneError(
          'bus.config',
          `consumer ${options.consumer} has max_deliver ${limit}: a controller's consumer needs it unlimited (-1), ` +
            'or JetStream drops an event after that many deliveries without a reconcile_failed; recreate the consumer',
          { details: { consumer: options.consumer, max_deliver: limit } },
        )
      // nanoseconds on the wire
      const wait = info.config.ack_wait ?? 0
      ackWaitMs = wait > 0 ? wait / 1_000_000 : undefined
    },
    ackWaitMs: () => ackWaitMs,
    isClosed: () => options.nc.isClosed(),
    async open(signal): Promise<LiveSubscription> {
      return subscribe(jetstream(options.nc), {
        consumer: options.consumer,
        signal,
        ...(options.batch ? { batch: options.batch } : {}),
        ...(options.logger ? { logger: options.logger } : {}),
        ...(options.ackRetry ? { ackRetry: options.ackRetry } : {}),
      })
    },
    async pending(): Promise<number> {
      const lag = await consumerLag(await jetstreamManager(options.nc), options.consumer)
      if (lag === undefined) throw new Unavailable('bus.unavailable', `consumer ${options.consumer} does not exist`)
      return lag.lag
    },
  }
}

/**
 * The one consumer filter covering a set of kinds, categories and a tenant
 * (a consumer has one filter subject): a dimension with several values is
 * left open, and the runtime filters the rest in code.
 */
export function coveringFilter(f: {
  kinds?: readonly EventKind[]
  categories?: readonly string[]
  tenant?: string
}): LogFilterOptions {
  return {
    ...(f.kinds?.length === 1 ? { kind: f.kinds[0]! } : {}),
    ...(f.tenant !== undefined ? { tenant: f.tenant } : {}),
    ...(f.categories?.length === 1 ? { category: f.categories[0]! } : {}),
  }
}

/**
 * The live source of a projection: a durable consumer `proj_<name>` (or
 * `consumer`) over the projection's covering filter, created with
 * `deliver: 'new'` because the runner catches up from PostgreSQL after creating it.
 */
export function projectionLiveSource(
  nc: NatsConnection,
  projection: {
    name: string
    filter?: { kinds?: readonly EventKind[]; categories?: readonly string[]; tenant?: string }
  },
  options: Omit<JetStreamSourceOptions, 'nc' | 'consumer' | 'filter' | 'deliver'> & { consumer?: string } = {},
): LiveSource {
  const { consumer, ...rest } = options
  return jetStreamSource({
    ...rest,
    nc,
    consumer: consumer ?? `proj_${projection.name}`,
    filter: coveringFilter(projection.filter ?? {}),
    deliver: 'new',
  })
}

/** The start of a controller's default durable consumer name (`ctl_<controller>`); no tenant may be named `ctl`. */
export const CONTROLLER_CONSUMER_PREFIX = 'ctl_'

/** The default durable consumer of controller `name`: `ctl_<name>` (what `evtctl status` reports its lag from). */
export function controllerConsumerName(name: string): string {
  return `${CONTROLLER_CONSUMER_PREFIX}${name}`
}

/**
 * The live source of a controller: a durable consumer `ctl_<name>` (or `consumer`) from the first event on,
 * with no delivery limit (an existing consumer with one is refused: see `unlimitedDeliveries`).
 */
export function controllerLiveSource(
  nc: NatsConnection,
  controller: { name: string; kinds?: readonly EventKind[]; categories?: readonly string[] },
  options: Omit<JetStreamSourceOptions, 'nc' | 'consumer' | 'filter' | 'maxDeliver' | 'unlimitedDeliveries'> & {
    consumer?: string
  } = {},
): LiveSource {
  const { consumer, ...rest } = options
  return jetStreamSource({
    deliver: 'all',
    ...rest,
    // Also from a caller the type does not stop (JavaScript).
    maxDeliver: undefined,
    nc,
    consumer: consumer ?? controllerConsumerName(controller.name),
    filter: coveringFilter(controller),
    unlimitedDeliveries: true,
  })
}
