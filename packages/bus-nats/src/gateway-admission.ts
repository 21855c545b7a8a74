import type { ResolvedLimits, TenantLimits } from './gateway-limits.ts'
import { TokenBucket } from './token-bucket.ts'

/** Why a request was refused at arrival: the limit it would have broken. */
export type RefusalReason = 'rate' | 'byte_rate' | 'tenant_in_flight' | 'tenant_bytes' | 'in_flight' | 'bytes'

export interface Refusal {
  reason: RefusalReason
  retryAfterMs: number
}

/** A request admitted to wait for its turn; `run` processes and answers it. */
type Job = () => Promise<void>

interface TenantState {
  limits: TenantLimits
  /** Requests per second, and request bytes per second. */
  bucket: TokenBucket
  byteBucket: TokenBucket
  queue: Array<{ run: Job; bytes: number }>
  /** Requests held (queued + running) and their bytes. */
  held: number
  bytes: number
  running: number
}

/**
 * Admission and fair scheduling of the gateway's requests. Every request is
 * offered at arrival, before its body is parsed: it is refused at once when
 * its tenant would hold more requests or bytes than its limits, or the
 * gateway as a whole would, or the tenant is over its rate (token buckets of
 * requests and of bytes); otherwise it waits in its tenant's own FIFO queue. At most `concurrency` requests run at
 * once, at most `maxConcurrent` of one tenant, and the next to run is taken
 * from the tenants in turn (round robin), so a tenant with a thousand
 * requests queued delays another tenant's request by one turn, not a thousand.
 */
export class FairAdmission {
  readonly #limits: ResolvedLimits
  readonly #tenants = new Map<string, TenantState>()
  /** Tenants with queued requests, in turn order (a Map keeps insertion order; served tenants go to the back). */
  readonly #ready = new Map<string, TenantState>()
  #held = 0
  #bytes = 0
  #running = 0
  #peakBytes = 0
  #sweepAt = 1024
  #idle: Array<() => void> = []

  constructor(limits: ResolvedLimits) {
    this.#limits = limits
  }

  /** Requests held now (queued + running), their bytes, and the most bytes ever held at once. */
  get load(): { requests: number; bytes: number; peakBytes: number } {
    return { requests: this.#held, bytes: this.#bytes, peakBytes: this.#peakBytes }
  }

  /**
   * Admits a request of `tenant` holding `bytes` until it settles, or returns
   * why not. `admitted` is called only for an admitted request and returns
   * the job that processes it. A refusal takes no token: only admitted
   * requests count against the rate.
   */
  offer(tenant: string, bytes: number, admitted: () => Job): Refusal | undefined {
    const now = this.#limits.now()
    const state = this.#state(tenant, now)
    const busy = this.#limits.busyRetryAfterMs
    // A lone request is always admitted whatever its size; the request size limit bounds it.
    if (state.held >= state.limits.maxInFlight) return { reason: 'tenant_in_flight', retryAfterMs: busy }
    if (state.held > 0 && state.bytes + bytes > state.limits.maxBytesInFlight)
      return { reason: 'tenant_bytes', retryAfterMs: busy }
    if (this.#held >= this.#limits.maxInFlight) return { reason: 'in_flight', retryAfterMs: busy }
    if (this.#held > 0 && this.#bytes + bytes > this.#limits.maxBytesInFlight)
      return { reason: 'bytes', retryAfterMs: busy }
    const wait = state.bucket.wait(now)
    if (wait > 0) return { reason: 'rate', retryAfterMs: wait }
    const byteWait = state.byteBucket.wait(now, bytes)
    if (byteWait > 0) return { reason: 'byte_rate', retryAfterMs: byteWait }
    state.bucket.take(now)
    state.byteBucket.take(now, bytes)
    state.held += 1
    state.bytes += bytes
    this.#held += 1
    this.#bytes += bytes
    this.#peakBytes = Math.max(this.#peakBytes, this.#bytes)
    state.queue.push({ run: admitted(), bytes })
    if (!this.#ready.has(tenant)) this.#ready.set(tenant, state)
    this.#pump()
    return undefined
  }

  /**
   * Takes `bytes` more from `tenant`'s byte bucket for a request it holds, when the request turned out to
   * cost more than its body: its data as the log stores it (numbers in full decimal) can be 60 times its
   * JSON, and the stream every tenant shares fills by that. The bucket may go below empty: the tenant's
   * next requests wait until it has refilled.
   */
  charge(tenant: string, bytes: number): void {
    const state = this.#tenants.get(tenant)
    if (state === undefined || !(bytes > 0)) return
    state.byteBucket.take(this.#limits.now(), bytes)
  }

  /** Resolves once nothing is held (every admitted request has settled). */
  idle(): Promise<void> {
    if (this.#held === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  #pump(): void {
    while (this.#running < this.#limits.concurrency) {
      let picked: [string, TenantState] | undefined
      for (const entry of this.#ready) {
        if (entry[1].running < entry[1].limits.maxConcurrent) {
          picked = entry
          break
        }
      }
      if (picked === undefined) return
      const [tenant, state] = picked
      const job = state.queue.shift()!
      this.#ready.delete(tenant)
      if (state.queue.length > 0) this.#ready.set(tenant, state)
      state.running += 1
      this.#running += 1
      void job
        .run()
        .catch(() => {})
        .finally(() => this.#settle(state, job.bytes))
    }
  }

  #settle(state: TenantState, bytes: number): void {
    state.running -= 1
    state.held -= 1
    state.bytes -= bytes
    this.#running -= 1
    this.#held -= 1
    this.#bytes -= bytes
    this.#pump()
    if (this.#held === 0) for (const resolve of this.#idle.splice(0)) resolve()
  }

  #state(tenant: string, now: number): TenantState {
    let state = this.#tenants.get(tenant)
    if (state === undefined) {
      if (this.#tenants.size >= this.#sweepAt) this.#sweep(now)
      const limits = this.#limits.tenantLimits(tenant)
      state = {
        limits,
        bucket: new TokenBucket(limits.ratePerSecond, limits.burst, now),
        byteBucket: new TokenBucket(limits.bytesPerSecond, limits.burstBytes, now),
        queue: [],
        held: 0,
        bytes: 0,
        running: 0,
      }
      this.#tenants.set(tenant, state)
    }
    return state
  }

  /** Forgets tenants that hold nothing and whose buckets are full: a fresh state would behave the same. */
  #sweep(now: number): void {
    for (const [tenant, state] of this.#tenants)
      if (state.held === 0 && state.bucket.isFull(now) && state.byteBucket.isFull(now)) this.#tenants.delete(tenant)
    this.#sweepAt = Math.max(1024, 2 * this.#tenants.size)
  }
}
