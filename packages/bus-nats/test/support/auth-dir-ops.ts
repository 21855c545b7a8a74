import { mock } from 'node:test'
import { type AuthDir, type TenantAdmin, connectTenantAdmin } from '../../src/nats-config/index.ts'

/** Runs `fn` with `Date` pinned to `second` (seconds since the epoch), the real clock back after it. */
export async function pinnedTo<T>(second: number, fn: () => Promise<T>): Promise<T> {
  mock.timers.enable({ apis: ['Date'], now: second * 1000 })
  try {
    return await fn()
  } finally {
    mock.timers.reset()
  }
}

/** Runs `fn` with `Date` pinned two seconds before `iat` (seconds): a clock behind the one that issued it. */
export function twoSecondsBefore<T>(iat: number, fn: () => Promise<T>): Promise<T> {
  return pinnedTo(iat - 2, fn)
}

/**
 * Runs `fn` with a tenant admin of `auth` connected to `url` with its
 * system and operator creds files as they are now, closed after it.
 */
export async function asTenantAdmin<T>(auth: AuthDir, url: string, fn: (admin: TenantAdmin) => Promise<T>): Promise<T> {
  const admin = await connectTenantAdmin(auth, url)
  try {
    return await fn(admin)
  } finally {
    await admin.close()
  }
}
