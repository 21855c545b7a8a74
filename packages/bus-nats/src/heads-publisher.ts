import { type KeyObject, createPublicKey } from 'node:crypto'
import {
  type ChainHeads,
  type HeadsConflict,
  type HeadsFile,
  type Sql,
  headsConflicts,
  headsToFile,
  listChainTenants,
  readHeads,
  signHeads,
} from '@eventplane/store-pg'
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import {
  type HeadsStreamOptions,
  type PublishedHeads,
  ensureHeadsStream,
  headsOfTenant,
  latestPublishedHeads,
  publishHeads,
} from './heads-stream.ts'
import { type Logger, errorFields, silentLogger } from './logger.ts'
import { settlesWithin } from './settles-within.ts'

/** What publishing one tenant's heads did. */
export type HeadsPublishOutcome =
  | { outcome: 'published'; file: HeadsFile; published: PublishedHeads }
  | { outcome: 'unchanged'; file: HeadsFile }
  /** The log does not extend the newest published heads (a rewritten history): nothing published. */
  | { outcome: 'refused'; file: HeadsFile; conflicts: HeadsConflict[] }

/**
 * Publishes `heads` (taken with `readHeads`, maybe signed) unless they equal
 * the tenant's newest published heads, and refuses (unless `force`) when the
 * log no longer extends those: a stream's hash at its published head changed,
 * or the stream or that version is gone. So once published, an anchor is only
 * ever followed by heads of the same history, and a rewrite stays visible to
 * `evtctl verify --against nats`. The anchor is the newest message that
 * checks as this tenant's heads and, when `heads` are signed, carries a valid
 * signature by the same key: newer messages that do not (published by anyone
 * else with publish rights on the heads subjects) are skipped, so they can
 * neither hide the anchor nor stand in for it.
 */
export async function publishTenantHeads(options: {
  sql: Sql
  jsm: JetStreamManager
  js: JetStreamClient
  heads: ChainHeads
  force?: boolean
}): Promise<HeadsPublishOutcome> {
  const { tenant, signature } = options.heads
  const file = headsToFile(options.heads)
  const pinned =
    signature &&
    createPublicKey({ key: signature.public_key, format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' })
  const { found } = await latestPublishedHeads(options.jsm, tenant, headsOfTenant(tenant, pinned))
  const earlier = found?.heads
  if (earlier?.digest.equals(options.heads.digest)) return { outcome: 'unchanged', file }
  if (earlier && !options.force) {
    const conflicts = await headsConflicts(options.sql, earlier, options.heads)
    if (conflicts.length > 0) return { outcome: 'refused', file, conflicts }
  }
  return { outcome: 'published', file, published: await publishHeads(options.js, file) }
}

export interface HeadsPublisherOptions {
  /** A role that reads every tenant's heads (the relay's or the operator's). */
  sql: Sql
  /** A system-side connection allowed to publish `eventplane-heads.>` (the relay's or the operator's user). */
  nc: NatsConnection
  /** Milliseconds between rounds; at least 1,000. */
  everyMs: number
  /** Ed25519 private key: every published heads file is signed with it. */
  signingKey?: KeyObject
  /** Publishes only while this says so (the relay: while it holds its lease); default always. */
  isActive?: () => boolean
  logger?: Logger
  stream?: HeadsStreamOptions
  /** How long one JetStream request of a round (a read, a publish's ack) may take before it fails. Default 5000 ms. */
  timeoutMs?: number
}

/** What one round did: tenants published, unchanged since their newest published heads, refused, failed. */
export interface HeadsRound {
  published: string[]
  unchanged: number
  /** Tenants whose log no longer extends their newest published heads (logged as an error each round). */
  refused: string[]
  failed: string[]
}

/**
 * Publishes every tenant's chain heads to JetStream periodically (the anchor
 * `evtctl verify --against nats` checks the log with), so a copy lives
 * outside PostgreSQL: someone who rewrites a stream and recomputes its hashes
 * in the database cannot rewrite the heads published before. A tenant is
 * published only when its heads changed since its newest published ones
 * (looked up in the stream, then remembered), so the history holds one
 * message per change, not one per round; and never when the log no longer
 * extends them ({@link publishTenantHeads}): that is logged as an error every
 * round, naming the streams. A failure is logged and retried next round; it
 * never stops the process it runs in.
 */
export class HeadsPublisher {
  readonly everyMs: number
  readonly #o: HeadsPublisherOptions
  readonly #logger: Logger
  /** Digest of the newest heads published per tenant. */
  readonly #lastDigest = new Map<string, string>()
  #timer: NodeJS.Timeout | undefined
  #round: Promise<unknown> = Promise.resolve()
  #streamReady = false
  #stopped = false
  /** The stop's deadline passed with the round still in flight: it goes on unobserved, its failures logged at debug. */
  #abandoned = false
  #stopping: Promise<void> | undefined

  constructor(options: HeadsPublisherOptions) {
    if (!Number.isSafeInteger(options.everyMs) || options.everyMs < 1000)
      throw new RangeError('everyMs must be an integer of at least 1000')
    if (options.signingKey && options.signingKey.asymmetricKeyType !== 'ed25519')
      throw new TypeError('the heads signing key is not an Ed25519 private key')
    this.everyMs = options.everyMs
    this.#o = options
    this.#logger = options.logger ?? silentLogger
  }

  /** Starts the rounds: the first at once, then every `everyMs`. */
  start(): void {
    const tick = () => {
      if (this.#stopped) return
      this.#round = this.publishRound()
        .catch((e: unknown) => this.#failed(errorFields(e), 'a heads round failed'))
        .finally(() => {
          if (!this.#stopped) this.#timer = setTimeout(tick, this.everyMs)
        })
    }
    tick()
  }

  /**
   * Stops: no round starts after the call, and the round in flight publishes no further tenant. That round is
   * waited for, for at most `withinMs` (the relay passes its `stopDrainMs`, so its own stop bound holds); past
   * it, it is abandoned: it goes on unobserved (a JetStream request or a read of PostgreSQL cannot be called
   * back), its failures (the connections it waits on closing) are logged at debug only, and a heads publish it
   * cuts short is only a missed anchor: the next round (of the next active relay) publishes newer heads. Later
   * calls return the first one's promise.
   */
  stop(withinMs = Number.POSITIVE_INFINITY): Promise<void> {
    this.#stopping ??= this.#stop(withinMs)
    return this.#stopping
  }

  async #stop(withinMs: number): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    if (await settlesWithin(this.#round, withinMs)) return
    this.#abandoned = true
    this.#logger.warn(
      { bound_ms: withinMs, event: 'relay.heads_abandoned' },
      "heads publisher stopping: the round in flight was abandoned at the stop's deadline; the next round publishes newer heads",
    )
  }

  /** A failure of a round: a warning, or once abandoned (the stop closes what it waits on) a debug line. */
  #failed(fields: object, msg: string): void {
    if (this.#abandoned) this.#logger.debug({ ...fields, abandoned: true }, msg)
    else this.#logger.warn(fields, msg)
  }

  /** One round over every tenant with events (skipped while not active). Never throws for one tenant's failure. */
  async publishRound(): Promise<HeadsRound> {
    const round: HeadsRound = { published: [], unchanged: 0, refused: [], failed: [] }
    if (this.#o.isActive && !this.#o.isActive()) return round
    const timeout = this.#o.timeoutMs === undefined ? {} : { timeout: this.#o.timeoutMs }
    const jsm = await jetstreamManager(this.#o.nc, { checkAPI: false, ...timeout })
    if (!this.#streamReady) {
      await ensureHeadsStream(jsm, this.#o.stream)
      this.#streamReady = true
    }
    const js = jetstream(this.#o.nc, timeout)
    for (const tenant of await listChainTenants(this.#o.sql)) {
      if (this.#stopped) break
      try {
        const heads = await readHeads(this.#o.sql, tenant)
        if (this.#lastDigest.get(tenant) === heads.digest.toString('hex')) {
          round.unchanged++
          continue
        }
        const signed = this.#o.signingKey ? signHeads(heads, this.#o.signingKey) : heads
        const r = await publishTenantHeads({ sql: this.#o.sql, jsm, js, heads: signed })
        if (r.outcome === 'refused') {
          round.refused.push(tenant)
          this.#lastDigest.delete(tenant)
          this.#logger.error(
            {
              tenant,
              streams: r.conflicts.slice(0, 20).map((c) => `${c.category}/${c.stream_id}@${c.version}:${c.reason}`),
              conflicts: r.conflicts.length,
            },
            'heads not published: the log no longer extends the newest published heads (run evtctl verify --against nats)',
          )
          continue
        }
        this.#lastDigest.set(tenant, r.file.digest)
        if (r.outcome === 'unchanged') {
          round.unchanged++
          continue
        }
        round.published.push(tenant)
        this.#logger.info(
          {
            tenant,
            position: r.file.global_position,
            streams: r.file.streams.length,
            seq: r.published.seq,
            parts: r.published.parts,
          },
          'heads published',
        )
      } catch (e) {
        round.failed.push(tenant)
        this.#failed({ tenant, ...errorFields(e) }, 'publishing heads failed')
      }
    }
    return round
  }
}
