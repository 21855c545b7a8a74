import { EventFactory } from '@eventplane/core'
import { tail } from '@eventplane/bus-nats'
import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import { type BusEnv, appendIntents, eventually } from '../../../packages/bus-nats/test/fixtures.ts'
import { type ServiceChild, spawnService } from '../../faults/support/children.ts'
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

/**
 * A rotation of the services' keys under a running `evtctl gateway` and `evtctl relay` of `env` (acme's intents
 * followed to delivery, {@link deliveredSubmits}): `rotate` runs between an intent submitted before and one after,
 * then 20 events appended right after it must all be delivered (published once the relay is back), and neither
 * service may have exited or logged a failure. `label` names the intents' principal and streams.
 */
export async function servicesThroughRotation(
  env: BusEnv,
  t: TestContext,
  label: string,
  rotate: () => Promise<void>,
): Promise<void> {
  const services: ServiceChild[] = [spawnService(env, 'gateway'), spawnService(env, 'relay')]
  const [gateway, relay] = services as [ServiceChild, ServiceChild]
  try {
    await Promise.all([gateway.waitForLog('gateway serving'), relay.waitForLog('relay active')])
    const { submit, seen, ledger, stop } = await deliveredSubmits(env, 'acme', `user:${label}`)
    await submit('before')
    await rotate()
    // Appended while the relay may still be reconnecting: published once it is back, none lost.
    const appended = await appendIntents(env.intents, 'acme', 20, 5, label)
    await submit('after')
    await eventually(() => appended.every((e) => seen.includes(e.event_id)), 'every appended event to be delivered')
    for (const s of services) {
      assert.equal(s.process.exitCode, null, `${s.kind} still runs`)
      const failures = s.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('evtctl: '))
      assert.deepEqual(failures, [], `${s.kind} logged no failure`)
    }
    t.diagnostic(`submit errors while they reconnected: ${ledger.summary()}`)
    await stop()
  } finally {
    await Promise.allSettled(services.map((s) => s.kill()))
  }
}
