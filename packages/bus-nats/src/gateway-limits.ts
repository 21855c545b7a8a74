import { EventplaneError } from '@eventplane/core'

/** What one tenant may hold and send at one gateway process. */
export interface TenantLimits {
  /** Sustained requests per second (token bucket refill). `Infinity`: no rate limit. Default 100. */
  ratePerSecond: number
  /** Requests the tenant may send at once above its rate (bucket size). Default 200. */
  burst: number
  /** The tenant's requests held at once, waiting or being processed. Default 64. */
  maxInFlight: number
  /** The tenant's request bytes held at once. Default 4 MiB. */
  maxBytesInFlight: number
  /** The tenant's requests processed at once; the rest wait in its own queue. Default 4. */
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
  /** Requests processed at once over all tenants; keep it at most the store pool's size. Default 8. */
  concurrency?: number
  /** The retry-after sent when a request is refused for requests or bytes held (a hint). Default 100 ms. */
  busyRetryAfterMs?: number
  /** Monotonic clock in milliseconds (default `performance.now`); tests drive the rate limit with their own. */
  now?: () => number
}

export const DEFAULT_TENANT_LIMITS: Readonly<TenantLimits> = Object.freeze({
  ratePerSecond: 100,
  burst: 200,
  maxInFlight: 64,
  maxBytesInFlight: 4 * 1024 * 1024,
  maxConcurrent: 4,
})

export const DEFAULT_GATEWAY_MAX_IN_FLIGHT = 1024
export const DEFAULT_GATEWAY_MAX_BYTES_IN_FLIGHT = 64 * 1024 * 1024
export const DEFAULT_GATEWAY_CONCURRENCY = 8
const DEFAULT_BUSY_RETRY_AFTER_MS = 100

/** {@link GatewayLimits} with every default applied and every value checked. */
export interface ResolvedLimits {
  tenantLimits(tenant: string): TenantLimits
  maxInFlight: number
  maxBytesInFlight: number
  concurrency: number
  busyRetryAfterMs: number
  now: () => number
}

function invalid(message: string): EventplaneError {
  return new EventplaneError('cli.config', `gateway limits: ${message}`)
}

function positiveInt(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw invalid(`${what} must be a positive integer, got ${value}`)
  return value
}

function checkTenant(l: TenantLimits, who: string): TenantLimits {
  if (!(l.ratePerSecond > 0)) throw invalid(`${who} ratePerSecond must be positive, got ${l.ratePerSecond}`)
  if (!(l.burst >= 1) || !Number.isFinite(l.burst)) throw invalid(`${who} burst must be at least 1, got ${l.burst}`)
  positiveInt(l.maxInFlight, `${who} maxInFlight`)
  positiveInt(l.maxBytesInFlight, `${who} maxBytesInFlight`)
  positiveInt(l.maxConcurrent, `${who} maxConcurrent`)
  return Object.freeze({ ...l })
}

/** Applies the defaults and validates; throws `cli.config` naming the bad setting. */
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
    now: limits.now ?? (() => performance.now()),
  }
}
