/**
 * A tenant flooding the gateway, as a child process (its CPU is not the test's):
 * `FLOOD_SMALL` small intents, then `FLOOD_LARGE` intents of `FLOOD_LARGE_BYTES`
 * of data, each phase with `FLOOD_WINDOW_*` requests outstanding at every
 * moment, through the tenant's own creds. Prints one JSON line per phase
 * (`{"msg":"flood phase done", phase, outcomes, ms}`) and `{"msg":"flood done"}`. Connects, says
 * `{"msg":"flood ready"}` and waits for SIGUSR1 before it floods.
 */
import { readFileSync } from 'node:fs'
import { EventFactory, isEventplaneError } from '@eventplane/core'
import { submitIntent, tenantInboxPrefix } from '@eventplane/bus-nats'
import { connect, credsAuthenticator } from '@nats-io/transport-node'

const env = process.env
const tenant = env.FLOOD_TENANT!
const nc = await connect({
  servers: env.FLOOD_NATS_URL!,
  authenticator: credsAuthenticator(readFileSync(env.FLOOD_CREDS!)),
  inboxPrefix: tenantInboxPrefix(tenant),
  name: `flood-${tenant}`,
})
const factory = EventFactory.forTenant(tenant, { causedBy: 'user:flood' })

async function phase(name: string, count: number, dataBytes: number, window: number): Promise<void> {
  const outcomes: Record<string, number> = {}
  const blob = 'x'.repeat(dataBytes)
  const started = performance.now()
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++
      const data: Record<string, number | string> = dataBytes > 0 ? { n: i, blob } : { n: i }
      const event = factory.intent({ category: 'flood', id: `${name}-${i % 64}` }, 'flooded', data)
      let outcome: string
      try {
        await submitIntent(nc, event, { timeoutMs: 120_000 })
        outcome = 'ok'
      } catch (e) {
        outcome = isEventplaneError(e) ? e.code : 'unexpected'
      }
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1
    }
  }
  await Promise.all(Array.from({ length: window }, worker))
  const ms = Math.round(performance.now() - started)
  console.log(JSON.stringify({ msg: 'flood phase done', phase: name, outcomes, ms }))
}

// Started and connected before the test measures globex at rest; floods on SIGUSR1.
const go = new Promise((resolve) => process.once('SIGUSR1', resolve))
console.log(JSON.stringify({ msg: 'flood ready' }))
await go
await phase('small', Number(env.FLOOD_SMALL), 0, Number(env.FLOOD_WINDOW_SMALL))
await phase('large', Number(env.FLOOD_LARGE), Number(env.FLOOD_LARGE_BYTES), Number(env.FLOOD_WINDOW_LARGE))
console.log(JSON.stringify({ msg: 'flood done' }))
await nc.drain()
