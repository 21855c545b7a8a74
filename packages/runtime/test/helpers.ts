import { EventFactory } from '@eventplane/core'

/** A root factory for one tenant, acting as a test user. */
export function factoryFor(tenant: string, causedBy = 'user:test'): EventFactory {
  return EventFactory.forTenant(tenant, { causedBy })
}

export const stream = (tenant: string, id: string, category = 'deployment') => ({ tenant, category, id })

export { eventually } from '@eventplane/store-pg/testing'

/** Settles as `p` does, or rejects with `what` after `ms`: a wait that never ends fails fast, explained. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([p, late])
  } finally {
    clearTimeout(timer)
  }
}
