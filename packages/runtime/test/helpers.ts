import { EventFactory } from '@eventplane/core'

/** A root factory for one tenant, acting as a test user. */
export function factoryFor(tenant: string, causedBy = 'user:test'): EventFactory {
  return EventFactory.forTenant(tenant, { causedBy })
}

export const stream = (tenant: string, id: string, category = 'deployment') => ({ tenant, category, id })

export { eventually, within } from '@eventplane/store-pg/testing'
