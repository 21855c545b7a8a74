import { EventplaneError } from '@eventplane/core'

/** What one tenant may hold and send at one gateway process. */
export interface TenantLimits {
  /** Sustained requests per second (token bucket refill). `Infinity`: no rate limit. Default 100. */
  ratePerSecond: number
  /** Requests the tenant may send at once above its rate (bucket size). Default 100. */
  burst: number
  /** Sustained request bytes per second (a second token bucket). `Infinity`: no limit. Default 1 MiB. */
  bytesPerSecond: number
  /** Request bytes the tenant may send at once above that rate. Default 1 MiB. */
  burstBytes: number
  /** The tenant's requests held at once, waiting or being processed. Default 64. */
  maxInFlight: number
  /** The tenant's request bytes held at once. Default 4 MiB. */
  maxBytesInFlight: number
  /** The tenant's requests processed at once; the rest wait in its own queue. Default 2. */
  maxConcurrent: number
}

/**
 * The gateway's fairness settings. Every limit is per gateway process: with
 * `n` gateways in a queue group a tenant gets up to `n` times its rate.
 */
export interface GatewayLimits {
  /** Limits of every tenant, over the defaults ({@link DEFAULT_TENANT_LIMITS}). */
  perTenant?: Partial<TenantLimits>
  /** Limits of named tenants, over `perTenant`. */
  tenants?: Record<string, Partial<TenantLimits>>
  /** Requests held at once over all tenants. Default 1024. */
  maxInFlight?: number
  /** Request bytes held at once over all tenants. Default 64 MiB. */
  maxBytesInFlight?: number
  /** Requests processed at once over all tenants, one store connection each. Default 8, or the store pool's size if smaller. */
  concurrency?: number
  /** The retry-after sent when a request is refused for requests or bytes held (a hint). Default 100 ms. */
  busyRetryAfterMs?: number
  /**
   * How long a refusal is held before it is answered, so that a client
   * resending at once cannot make the gateway refuse at full speed; 0
   * answers at once. Default 500 ms.
   */
  refusalHoldMs?: number
  /** Refusals held at once; past it they are answered at once. Default 10,000. */
  maxHeldRefusals?: number
  /** Monotonic clock in milliseconds (default `performance.now`); tests drive the rate limit with their own. */
  now?: () => number
}

export const DEFAULT_TENANT_LIMITS: Readonly<TenantLimits> = Object.freeze({
  ratePerSecond: 100,
  burst: 100,
  bytesPerSecond: 1024 * 1024,
  burstBytes: 1024 * 1024,
  maxInFlight: 64,
  maxBytesInFlight: 4 * 1024 * 1024,
  maxConcurrent: 2,
})

export const DEFAULT_GATEWAY_MAX_IN_FLIGHT = 1024
export const DEFAULT_GATEWAY_MAX_BYTES_IN_FLIGHT = 64 * 1024 * 1024
export const DEFAULT_GATEWAY_CONCURRENCY = 8
const DEFAULT_BUSY_RETRY_AFTER_MS = 100
export const DEFAULT_REFUSAL_HOLD_MS = 500
const DEFAULT_MAX_HELD_REFUSALS = 10_000

/** {@link GatewayLimits} with every default applied and every value checked. */
export interface ResolvedLimits {
  tenantLimits(tenant: string): TenantLimits
  maxInFlight: number
  maxBytesInFlight: number
  concurrency: number
  busyRetryAfterMs: number
  refusalHoldMs: number
  maxHeldRefusals: number
  now: () => number
}

function invalid(message: string): EventplaneError {
  return new EventplaneError('bus.config', `gateway limits: ${message}`)
}

function positiveInt(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw invalid(`${what} must be a positive integer, got ${value}`)
  return value
}

function nonNegativeInt(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw invalid(`${what} must be a non-negative integer, got ${value}`)
  return value
}

function checkTenant(l: TenantLimits, who: string): TenantLimits {
  if (!(l.ratePerSecond > 0)) throw invalid(`${who} ratePerSecond must be positive, got ${l.ratePerSecond}`)
  if (!(l.burst >= 1) || !Number.isFinite(l.burst)) throw invalid(`${who} burst must be at least 1, got ${l.burst}`)
  if (!(l.bytesPerSecond > 0)) throw invalid(`${who} bytesPerSecond must be positive, got ${l.bytesPerSecond}`)
  if (!(l.burstBytes >= 1) || !Number.isFinite(l.burstBytes))
    throw invalid(`${who} burstBytes must be at least 1, got ${l.burstBytes}`)
  positiveInt(l.maxInFlight, `${who} maxInFlight`)
  positiveInt(l.maxBytesInFlight, `${who} maxBytesInFlight`)
  positiveInt(l.maxConcurrent, `${who} maxConcurrent`)
  return Object.freeze({ ...l })
}

/** Applies the defaults and validates; throws `bus.config` naming the bad setting. */
export function resolveLimits(limits: GatewayLimits = {}): ResolvedLimits {
  const base = checkTenant({ ...DEFAULT_TENANT_LIMITS, ...limits.perTenant }, 'perTenant')
  const named = new Map<string, TenantLimits>()
  for (const [tenant, own] of Object.entries(limits.tenants ?? {}))
    named.set(tenant, checkTenant({ ...base, ...own }, `tenant ${tenant}`))
  const busy = limits.busyRetryAfterMs ?? DEFAULT_BUSY_RETRY_AFTER_MS
  return {
    tenantLimits: (tenant) => named.get(tenant) ?? base,
    maxInFlight: positiveInt(limits.maxInFlight ?? DEFAULT_GATEWAY_MAX_IN_FLIGHT, 'maxInFlight'),
    maxBytesInFlight: positiveInt(limits.maxBytesInFlight ?? DEFAULT_GATEWAY_MAX_BYTES_IN_FLIGHT, 'maxBytesInFlight'),
    concurrency: positiveInt(limits.concurrency ?? DEFAULT_GATEWAY_CONCURRENCY, 'concurrency'),
    busyRetryAfterMs: positiveInt(busy, 'busyRetryAfterMs'),
    refusalHoldMs: nonNegativeInt(limits.refusalHoldMs ?? DEFAULT_REFUSAL_HOLD_MS, 'refusalHoldMs'),
    maxHeldRefusals: positiveInt(limits.maxHeldRefusals ?? DEFAULT_MAX_HELD_REFUSALS, 'maxHeldRefusals'),
    now: limits.now ?? (() => performance.now()),
  }
}
