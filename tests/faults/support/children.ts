import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { ROLES } from '@eventplane/store-pg'
import { type BusEnv, type ServiceProcess, spawnServiceProcess } from '../../../packages/bus-nats/test/fixtures.ts'

const BINS = {
  relay: fileURLToPath(new URL('../../../packages/bus-nats/src/bin/relay.ts', import.meta.url)),
  gateway: fileURLToPath(new URL('../../../packages/bus-nats/src/bin/gateway.ts', import.meta.url)),
}

export type ServiceKind = keyof typeof BINS

/** A relay or gateway running as a child process (src/bin), so a test can SIGKILL it. */
export interface ServiceChild extends ServiceProcess {
  kind: ServiceKind
}

/** The environment each service reads (see resolveRelayConfig / resolveGatewayConfig). */
function serviceEnv(env: BusEnv, kind: ServiceKind): Record<string, string> {
  const creds = env.server.credentials[kind]!
  const role = kind === 'relay' ? ROLES.relay : ROLES.intentWriter
  return {
    EVENTPLANE_DATABASE_URL: env.db.roleUrl(role),
    EVENTPLANE_NATS_URL: env.server.url,
    EVENTPLANE_NATS_CREDS: creds.creds,
    ...(kind === 'relay' ? { EVENTPLANE_RELAY_POLL_MS: '200' } : {}),
  }
}

/** Spawns `src/bin/<kind>.ts` against the test database and nats-server; `extraEnv` tunes it (EVENTPLANE_RELAY_*). */
export function spawnService(env: BusEnv, kind: ServiceKind, extraEnv: Record<string, string> = {}): ServiceChild {
  return { kind, ...spawnServiceProcess(BINS[kind], kind, { ...serviceEnv(env, kind), ...extraEnv }) }
}

/**
 * Leaves `relay` frozen (SIGSTOP) at a moment when `lag()`, the events it published past its
 * stored checkpoint, is positive: it is in the middle of a batch and nothing it does can change
 * that before the test kills it. Freezes, lets in-flight publishes land, looks, and thaws it to
 * try again when it was between batches (at most 50 times).
 */
export async function freezeMidBatch(relay: ServiceChild, lag: () => Promise<number>): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    relay.freeze(true)
    await sleep(50)
    if ((await lag()) > 0) return
    relay.freeze(false)
    await sleep(5 + attempt)
  }
  throw new Error('the relay was never caught in the middle of a batch')
}
