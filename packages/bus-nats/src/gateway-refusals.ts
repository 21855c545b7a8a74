import type { Refusal, RefusalReason } from './gateway-admission.ts'
import type { SubmitReply } from './gateway-request.ts'
import type { Logger } from './logger.ts'

/** How often refusals are summed up in the log (one line per tenant and window, not one per request). */
const LOG_INTERVAL_MS = 10_000
/** At most this many tenants are named per window: the token is the requester's, a flood of names stays one line each. */
const LOG_TENANTS = 100

export interface RefusalDeskOptions {
  /** Sends a reply (never throws). */
  answer(subject: string, reply: string, body: SubmitReply): void
  logger: Logger
  /** How long a refusal is held before it is answered, on average (half to one and a half times); 0 answers at once. */
  holdMs: number
  /** Refusals held at once; past it, refusals are answered at once. */
  maxHeld: number
}

interface Held {
  subject: string
  reply: string
  tenant: string
  refusal: Refusal
  heldMs: number
}

/** Held refusals are answered in batches, one per slot of this many ms: one timer and one socket write per batch. */
const SLOT_MS = 25

/**
 * Answers the requests that admission refused, with `bus.rate_limited`, and
 * slows their senders down: each answer is held for `holdMs` on average (a
 * tarpit), so a client that resends as soon as it is refused, with `n`
 * requests outstanding, sends about `n / holdMs` requests a second, however
 * fast the gateway could refuse them. Each hold is drawn between half and
 * one and a half times `holdMs`, so a burst of refusals comes back spread
 * out rather than as the next burst. The retry-after in the answer counts
 * from the answer. Holding costs a reply subject, no body; at most `maxHeld`
 * are held. Refusals are logged as one summary line per tenant every 10 s.
 */
export class RefusalDesk {
  readonly #o: RefusalDeskOptions
  /** Held refusals by the slot they are due in. */
  readonly #slots = new Map<number, { timer: NodeJS.Timeout; held: Held[] }>()
  #held = 0
  #count = 0
  readonly #summary = new Map<string, { count: number; reason: RefusalReason }>()
  readonly #logTimer: NodeJS.Timeout

  constructor(options: RefusalDeskOptions) {
    this.#o = options
    this.#logTimer = setInterval(() => this.#logSummary(), LOG_INTERVAL_MS)
    this.#logTimer.unref()
  }

  /** Refusals answered or held so far. */
  get count(): number {
    return this.#count
  }

  /** Refusals held now, not yet answered. */
  get held(): number {
    return this.#held
  }

  refuse(tenant: string, subject: string, reply: string, refusal: Refusal): void {
    this.#count += 1
    const key = tenant.slice(0, 64)
    const known = this.#summary.get(key)
    if (known !== undefined) known.count += 1
    else if (this.#summary.size < LOG_TENANTS) this.#summary.set(key, { count: 1, reason: refusal.reason })
    if (this.#o.holdMs === 0 || this.#held >= this.#o.maxHeld) {
      this.#o.answer(subject, reply, refusalReply(tenant, refusal, 0))
      return
    }
    const now = performance.now()
    const slot = Math.ceil((now + this.#o.holdMs * (0.5 + Math.random())) / SLOT_MS)
    let batch = this.#slots.get(slot)
    if (batch === undefined) {
      batch = { timer: setTimeout(() => this.#answer(slot), slot * SLOT_MS - now), held: [] }
      this.#slots.set(slot, batch)
    }
    batch.held.push({ subject, reply, tenant, refusal, heldMs: Math.round(slot * SLOT_MS - now) })
    this.#held += 1
  }

  /** Answers every held refusal now and stops the log timer (the gateway is stopping). */
  close(): void {
    clearInterval(this.#logTimer)
    for (const [slot, batch] of [...this.#slots]) {
      clearTimeout(batch.timer)
      this.#answer(slot)
    }
    this.#logSummary()
  }

  #answer(slot: number): void {
    const batch = this.#slots.get(slot)
    if (batch === undefined) return
    this.#slots.delete(slot)
    this.#held -= batch.held.length
    for (const h of batch.held) this.#o.answer(h.subject, h.reply, refusalReply(h.tenant, h.refusal, h.heldMs))
  }

  #logSummary(): void {
    for (const [tenant, r] of this.#summary)
      this.#o.logger.warn({ tenant, refused: r.count, reason: r.reason }, 'requests refused: tenant over its limits')
    this.#summary.clear()
  }
}

/**
 * The `bus.rate_limited` reply (the wire form of core's `RateLimited`), built
 * without an Error: a flood is answered thousands of times a second, and a
 * stack trace for each was the refusal path's largest cost. `heldMs` is
 * already waited out, so the retry-after counts from the answer.
 */
function refusalReply(tenant: string, refusal: Refusal, heldMs: number): SubmitReply {
  const who = `tenant ${tenant.slice(0, 64)}`
  const why: Record<RefusalReason, string> = {
    rate: `${who} is over its request rate`,
    byte_rate: `${who} is over its rate of request bytes`,
    tenant_in_flight: `${who} has its maximum of requests in flight`,
    tenant_bytes: `${who} has its maximum of request bytes in flight`,
    in_flight: 'the gateway holds its maximum of requests',
    bytes: 'the gateway holds its maximum of request bytes',
  }
  const retryAfterMs = Math.max(0, refusal.retryAfterMs - heldMs)
  return {
    error: {
      code: 'bus.rate_limited',
      message: `${why[refusal.reason]}; retry after ${retryAfterMs} ms`,
      details: { reason: refusal.reason, retry_after_ms: retryAfterMs },
    },
  }
}
