/**
 * A token bucket: `burst` tokens at most, refilled at `ratePerSecond`. Time
 * comes from the caller (milliseconds on a monotonic clock), so the gateway
 * can use one clock for everything and tests can drive it by hand.
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
   * Takes one token: returns 0 when one was there, else the milliseconds
   * until one will be (nothing is taken then, so a refused request costs
   * the bucket nothing).
   */
  take(now: number): number {
    this.#refill(now)
    if (this.#tokens >= 1) {
      this.#tokens -= 1
      return 0
    }
    return Math.max(1, Math.ceil(((1 - this.#tokens) * 1000) / this.ratePerSecond))
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
