import { EventplaneError } from '@eventplane/core'
import type { TenantLimits } from './gateway-limits.ts'

/** A positive integer setting of `env` (at least `min`), or undefined when unset; `bus.config` when malformed. */
export function intFromEnv(env: NodeJS.ProcessEnv, key: string, maxDigits = 9, min = 1): number | undefined {
  const text = env[key]
  if (text === undefined || text === '') return undefined
  if (!new RegExp(`^[1-9]\\d{0,${maxDigits - 1}}$`).test(text) || Number(text) < min)
    throw new EventplaneError('bus.config', `${key} must be an integer of at least ${min}, got ${JSON.stringify(text)}`)
  return Number(text)
}

/** A boolean setting of `env` (`true`/`1`, `false`/`0`), or undefined when unset; `bus.config` when malformed. */
export function boolFromEnv(env: NodeJS.ProcessEnv, key: string): boolean | undefined {
  const text = env[key]
  if (text === undefined || text === '') return undefined
  if (text === 'true' || text === '1') return true
  if (text === 'false' || text === '0') return false
  throw new EventplaneError('bus.config', `${key} must be true or false, got ${JSON.stringify(text)}`)
}

/** A rate in requests per second: a positive decimal or `unlimited` (Infinity); undefined when unset. */
export function rateFromEnv(env: NodeJS.ProcessEnv, key: string): number | undefined {
  const text = env[key]
  if (text === undefined || text === '') return undefined
  if (text === 'unlimited') return Number.POSITIVE_INFINITY
  const rate = /^\d{1,9}(\.\d{1,6})?$/.test(text) ? Number(text) : Number.NaN
  if (!(rate > 0))
    throw new EventplaneError(
      'bus.config',
      `${key} must be a positive number or unlimited, got ${JSON.stringify(text)}`,
    )
  return rate
}

const TENANT_LIMIT_KEYS: ReadonlySet<string> = new Set([
  'ratePerSecond',
  'burst',
  'bytesPerSecond',
  'burstBytes',
  'maxInFlight',
  'maxBytesInFlight',
  'maxConcurrent',
] satisfies Array<keyof TenantLimits>)

/**
 * Per-tenant limits as JSON, e.g. `{"acme":{"ratePerSecond":500,"burst":1000}}`
 * (`"ratePerSecond"` / `"bytesPerSecond": "unlimited"` lift a rate limit); the values are
 * checked by the gateway. Undefined when unset; `bus.config` when malformed.
 */
export function tenantLimitsFromEnv(
  env: NodeJS.ProcessEnv,
  key: string,
): Record<string, Partial<TenantLimits>> | undefined {
  const text = env[key]
  if (text === undefined || text === '') return undefined
  const bad = (why: string) => new EventplaneError('bus.config', `${key}: ${why}`)
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw bad('not JSON')
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw bad('must be a JSON object')
  const out: Record<string, Partial<TenantLimits>> = {}
  for (const [tenant, limits] of Object.entries(parsed)) {
    if (typeof limits !== 'object' || limits === null || Array.isArray(limits))
      throw bad(`the limits of ${JSON.stringify(tenant)} must be an object`)
    const own: Partial<Record<keyof TenantLimits, number>> = {}
    for (const [name, value] of Object.entries(limits)) {
      if (!TENANT_LIMIT_KEYS.has(name)) throw bad(`unknown limit ${JSON.stringify(name)}`)
      if ((name === 'ratePerSecond' || name === 'bytesPerSecond') && value === 'unlimited')
        own[name] = Number.POSITIVE_INFINITY
      else if (typeof value === 'number') own[name as keyof TenantLimits] = value
      else throw bad(`${tenant}.${name} must be a number`)
    }
    out[tenant] = own
  }
  return out
}
