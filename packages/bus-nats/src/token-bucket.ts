/**
 * A token bucket: `burst` tokens at most, refilled at `ratePerSecond`. Time
 * comes from the caller (milliseconds on a monotonic clock), so the gateway
 * can use one clock for everything and tests can drive it by hand. Tokens
 * may be requests (one each) or bytes (a request's size).
 */
export class TokenBucket {
  readonly ratePerSecond: number
  readonly burst: number
  #tokens: number
  #at: number

  /** Starts full. `ratePerSecond` may be `Infinity` (never refuses); `burst` must be at least 1. */
  constructor(ratePerSecond: number, burst: number, now: number) {
    if (!(ratePerSecond > 0)) throw new RangeError(`ratePerSecond must be positive, got ${ratePerSecond}`)
    if (!(burst >= 1)) throw new RangeError(`burst must be at least 1, got ${burst}`)
    this.ratePerSecond = ratePerSecond
    this.burst = burst
    this.#tokens = burst
    this.#at = now
  }

  /**
   * The milliseconds until `n` tokens will be there (0: they are now). More
   * than `burst` counts as `burst`: a request larger than the bucket passes
   * when the bucket is full.
   */
  wait(now: number, n = 1): number {
    this.#refill(now)
    const need = Math.min(n, this.burst)
    if (this.#tokens >= need) return 0
    // Less a hair, so that float dust (0.998 tokens after 499 ms at 2/s) does not add a millisecond.
    return Math.max(1, Math.ceil(((need - this.#tokens) * 1000) / this.ratePerSecond - 1e-6))
  }

  /**
   * Takes `n` tokens (at most `burst`); call after {@link wait} said 0, or to charge a cost found after
   * admission, which may leave the bucket below empty (later waits are longer by as much).
   */
  take(now: number, n = 1): void {
    this.#refill(now)
    this.#tokens -= Math.min(n, this.burst)
  }

  /** True when the bucket is full at `now`: forgetting it and starting a new one changes nothing. */
  isFull(now: number): boolean {
    this.#refill(now)
    return this.#tokens >= this.burst
  }

  #refill(now: number): void {
    // A clock that went backwards (or a caller's mistake) never takes tokens away.
    const elapsed = Math.max(0, now - this.#at)
    this.#at = Math.max(this.#at, now)
    if (this.ratePerSecond === Number.POSITIVE_INFINITY) this.#tokens = this.burst
    else this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.ratePerSecond) / 1000)
  }
}
