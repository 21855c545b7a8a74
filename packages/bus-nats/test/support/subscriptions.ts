import assert from 'node:assert/strict'
import { ROLES } from '@eventplane/store-pg'
import { Relay } from '../../src/relay.ts'
import type { Delivery } from '../../src/subscription.ts'
import { type BusEnv, eventually, within } from '../fixtures.ts'

/**
 * A relay named `name` on `env` (a pool of 4, polling every 200 ms), started and active: what the subscription
 * tests read from. Stopped again when it does not become active.
 */
export async function startActiveRelay(env: BusEnv, name: string): Promise<Relay> {
  const relay = new Relay({
    sql: env.db.connect(ROLES.relay, 4),
    nc: await env.natsAs('relay'),
    name,
    pollIntervalMs: 200,
  })
  relay.start()
  try {
    await eventually(() => relay.state === 'active', 'the relay to create the stream and become active')
  } catch (e) {
    await within(relay.stop(), 10_000, 'relay stop').catch(() => {})
    throw e
  }
  return relay
}

/** Pulls the next delivery or fails after `ms`. */
export async function nextDelivery(it: AsyncIterator<Delivery>, ms = 15_000): Promise<Delivery> {
  const r = await within(it.next(), ms, 'the next delivery')
  assert.ok(!r.done, 'the subscription ended early')
  return r.value
}
