import { EventFactory } from '@eventplane/core'
import { tail } from '@eventplane/bus-nats'
import { type BusEnv, eventually } from '../../../packages/bus-nats/test/fixtures.ts'
import { Ledger, submitUntilAcked } from '../../faults/support/clients.ts'

/** What {@link deliveredSubmits} gives: `submit`, the event ids the tail delivered, the submits' errors. */
export interface DeliveredSubmits {
  submit(id: string): Promise<void>
  seen: string[]
  ledger: Ledger
  /** Ends the tail. */
  stop(): Promise<void>
}

/**
 * Intents of `tenant` submitted through the gateway as that tenant's user and followed to delivery: `submit(id)`
 * resolves once the gateway acknowledged an intent to `deployment/<id>` (retried within 30 s) and a live tail of
 * the tenant's log delivered it. For tests that rotate the services' keys under a running relay and gateway.
 */
export async function deliveredSubmits(env: BusEnv, tenant: string, causedBy: string): Promise<DeliveredSubmits> {
  const nc = await env.natsAs(tenant)
  const seen: string[] = []
  const live = await tail(nc, { tenant })
  void (async () => {
    for await (const e of live) seen.push(e.event_id)
  })()
  const factory = EventFactory.forTenant(tenant, { causedBy })
  const ledger = new Ledger()
  const submit = async (id: string): Promise<void> => {
    const event = factory.intent({ category: 'deployment', id }, 'scaled', { id })
    await submitUntilAcked(nc, event, ledger, { deadline: Date.now() + 30_000, timeoutMs: 2000 })
    await eventually(() => seen.includes(event.event_id), `${id} to be delivered`)
  }
  return { submit, seen, ledger, stop: () => live.stop() }
}
