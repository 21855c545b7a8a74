import type { Sql } from '@eventplane/store-pg'
import { InvalidName } from '@eventplane/core'
import type { NatsConnection } from '@nats-io/transport-node'
import type { Logger } from './logger.ts'
import type { EventplaneMetrics } from './ops/metrics.ts'
import type { TransactionGuardOptions } from './relay-guard.ts'
import type { EnsureStreamOptions } from './stream.ts'

export interface RelayOptions {
  /** postgres.js pool connected as eventplane_relay (reads every tenant, writes only its checkpoint). */
  sql: Sql
  nc: NatsConnection
  /** Checkpoint and lock name; relays with the same name take turns, one active at a time. Default 'default'. */
  name?: string
  /** Events read from PostgreSQL per batch; the checkpoint is stored after each batch's acks. Default 500. */
  batchSize?: number
  /** Bound on un-acked publishes. Default 256. */
  maxInFlight?: number
  /** Polling fallback when no notification arrives (also how often the lease and stuck transactions are checked). Default 1000 ms. */
  pollIntervalMs?: number
  /**
   * How long an idle relay waits for a wake-up before it reads the log again
   * (the lease and the guard are still checked every `pollIntervalMs`).
   * Default `pollIntervalMs`; a few ms makes the relay find appends by polling
   * alone, for writers that do not notify (the cost:
   * docs/benchmarks/journal-2026-11-30-early.md, "Wake-up alternatives").
   */
  wakePollMs?: number
  /** How often a standby relay retries the lock. Default `pollIntervalMs`. */
  lockRetryMs?: number
  /**
   * How often at most a drain looks past other databases' running transactions
   * (the exact horizon, eventplane.log_horizon of migration 0018, for every
   * page of that drain). Between, the relay reads up to the oldest transaction running anywhere in the
   * cluster (the snapshot's xmin; past it to the end of the checkpoint's transaction when that has ended,
   * migration 0020): never a skipped event, and free, where the
   * exact horizon may read every session (0.2-0.6 ms of backend CPU) whenever
   * rows wait behind a running append. So another database's long
   * transaction delays delivery by about this much, not by its length.
   * Default 50 ms; 0 looks on every drain.
   */
  horizonLookupMs?: number
  /** How long to wait for one publish ack. Default 5000 ms. */
  publishTimeoutMs?: number
  /**
   * How long one JetStream API request may take (the account check, the stream's check or create, the read of
   * its last message) before it fails and the relay retries. Default 5000 ms. A stop does not wait for it.
   */
  apiTimeoutMs?: number
  /**
   * How long one statement on the lease's own PostgreSQL session may take (taking, checking or releasing the
   * lease, storing the checkpoint) before it is cancelled and the session given up, and the lease with it.
   * Default 5000 ms. A stop bounds its own (see `stopDrainMs`).
   */
  leaseTimeoutMs?: number
  /**
   * On `stop()`, how long an active relay goes on publishing what was committed before it (an intent a
   * gateway answered while its process was stopping) before it lets go: it starts no batch after this, and
   * publishes whose acks have not come by then are abandoned, not checkpointed (not awaited for
   * `publishTimeoutMs`); a JetStream API request (a stream check, the read of the stream's last message, a
   * start) or a read of the log still in flight then is given up; the next active relay publishes what the
   * stream lacks (see RelayStop). Then come storing the checkpoint (at most 1 s, skipped past it: the next relay
   * resumes after the stream's last message anyway) and releasing the lease (cancelled past the rest of the
   * grace, its session ended: that frees the lease too). So `stop()` resolves at most `stopDrainMs` +
   * RELAY_STOP_GRACE_MS (2000 ms) after the call, whatever NATS keeps or PostgreSQL locks.
   * Default 2000 ms; 0 stops at once, abandoning the publishes in flight.
   */
  stopDrainMs?: number
  /** Upper bound of the retry backoff after a failure (NATS or PostgreSQL down). Default 5000 ms. */
  maxBackoffMs?: number
  /** Passed to ensureStream (duplicate window, replicas, max age). */
  stream?: EnsureStreamOptions
  /** Stuck transactions: reported after 30 s by default, terminated only when enabled (see TransactionGuard). */
  guard?: TransactionGuardOptions
  /** Counts published events and, at each scrape, looks up lag, checkpoint and the oldest transaction. */
  metrics?: EventplaneMetrics
  logger?: Logger
}

/** The relay name when none is given: the one `evtctl status` reports. */
export const DEFAULT_RELAY_NAME = 'default'

/** The relay's tunables with every default applied and checked. */
export type ResolvedRelayOptions = Required<
  Omit<RelayOptions, 'sql' | 'nc' | 'name' | 'logger' | 'stream' | 'guard' | 'metrics'>
> & { stream: EnsureStreamOptions }

const NAME = /^[A-Za-z0-9_-]{1,64}$/
const HORIZON_LOOKUP_MS = 50
const STOP_DRAIN_MS = 2000

/** The relay's name, `DEFAULT_RELAY_NAME` when none is given; `InvalidName` unless 1-64 of [A-Za-z0-9_-]. */
export function relayName(name: string | undefined): string {
  const resolved = name ?? DEFAULT_RELAY_NAME
  if (!NAME.test(resolved))
    throw new InvalidName(
      `relay name ${JSON.stringify(resolved)} may only contain ASCII letters, digits, _ and - (1-64)`,
    )
  return resolved
}

/** Applies the defaults documented on RelayOptions; a RangeError names an option that is not a valid count. */
export function resolveRelayOptions(options: RelayOptions): ResolvedRelayOptions {
  const poll = positive(options.pollIntervalMs ?? 1000, 'pollIntervalMs')
  return {
    batchSize: positive(options.batchSize ?? 500, 'batchSize'),
    maxInFlight: positive(options.maxInFlight ?? 256, 'maxInFlight'),
    pollIntervalMs: poll,
    wakePollMs: positive(options.wakePollMs ?? poll, 'wakePollMs'),
    lockRetryMs: positive(options.lockRetryMs ?? poll, 'lockRetryMs'),
    publishTimeoutMs: positive(options.publishTimeoutMs ?? 5000, 'publishTimeoutMs'),
    apiTimeoutMs: positive(options.apiTimeoutMs ?? 5000, 'apiTimeoutMs'),
    leaseTimeoutMs: positive(options.leaseTimeoutMs ?? 5000, 'leaseTimeoutMs'),
    maxBackoffMs: positive(options.maxBackoffMs ?? 5000, 'maxBackoffMs'),
    horizonLookupMs: nonNegative(options.horizonLookupMs ?? HORIZON_LOOKUP_MS, 'horizonLookupMs'),
    stopDrainMs: nonNegative(options.stopDrainMs ?? STOP_DRAIN_MS, 'stopDrainMs'),
    stream: options.stream ?? {},
  }
}

function positive(n: number, name: string): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`${name} must be a positive integer`)
  return n
}

function nonNegative(n: number, name: string): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${name} must be a non-negative integer`)
  return n
}
