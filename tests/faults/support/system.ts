import { Relay, type RelayOptions } from '@eventplane/bus-nats'
import {
  PROJECTOR_ROLE,
  ProjectionRunner,
  type ProjectionRunnerOptions,
  projectionLiveSource,
} from '@eventplane/runtime'
import { ROLES, type Sql } from '@eventplane/store-pg'
import { perSuite } from '@eventplane/store-pg/testing'
import type { NatsConnection } from '@nats-io/transport-node'
import { type BusEnv, createBusEnv, within } from '../../../packages/bus-nats/test/fixtures.ts'
import { type ServiceChild, type ServiceKind, spawnService } from './children.ts'
import { faultCounter } from './checks.ts'

export const TENANTS = ['acme', 'globex']

/**
 * One fault scenario's world: a fresh database, a project-run nats-server with
 * the tiered credentials, and everything the test starts on them (child
 * processes, in-process relays, projection runners, client connections).
 * `cleanup()` stops all of it, whatever state the test left it in.
 */
export interface FaultSystem {
  env: BusEnv
  /** Superuser pool on the test database (sees every tenant; for verification only). */
  admin: Sql
  /** Pool as eventplane_projector. */
  projector: Sql
  /** Spawns a relay or gateway child process; killed by cleanup. */
  spawn(kind: ServiceKind, extraEnv?: Record<string, string>): ServiceChild
  /** Starts an in-process relay as the relay user; stopped by cleanup. */
  startRelay(options?: Partial<Omit<RelayOptions, 'sql' | 'nc'>>): Promise<Relay>
  /** A projection runner of `faultCounter`, live on durable consumer `consumer` (as the controller user). */
  projection(consumer: string, options?: Partial<ProjectionRunnerOptions>): Promise<ProjectionRunner>
  /** A client connection as `tenant` (its own inbox prefix) that keeps reconnecting. */
  client(tenant: string): Promise<NatsConnection>
  /** Registers a cleanup step, run before the servers go (last registered, first run). */
  defer(step: () => Promise<unknown>): void
  cleanup(): Promise<void>
}

/** A {@link startFaultSystem} for the enclosing `describe`: started before its tests, cleaned up after them. */
export function useFaultSystem(prefix: string): FaultSystem {
  return perSuite(
    () => startFaultSystem(prefix),
    (sys) => sys.cleanup(),
  )
}

export async function startFaultSystem(prefix: string): Promise<FaultSystem> {
  const env = await createBusEnv(prefix, TENANTS)
  const steps: Array<() => Promise<unknown>> = []
  const projector = env.db.connect(PROJECTOR_ROLE, 4)
  const reconnecting = { maxReconnectAttempts: -1, reconnectTimeWait: 100 }
  const defer = (step: () => Promise<unknown>): void => void steps.push(step)
  return {
    env,
    admin: env.db.admin,
    projector,
    spawn(kind, extraEnv) {
      const child = spawnService(env, kind, extraEnv)
      defer(() => child.kill())
      return child
    },
    async startRelay(options = {}) {
      const relay = new Relay({
        sql: env.db.connect(ROLES.relay, 4),
        nc: await env.natsAs('relay'),
        pollIntervalMs: 200,
        maxBackoffMs: 300,
        publishTimeoutMs: 1000,
        ...options,
      })
      defer(() => within(relay.stop(), 10_000, 'relay stop'))
      relay.start()
      return relay
    },
    async projection(consumer, options = {}) {
      const nc = await env.natsAs('controller')
      const live = projectionLiveSource(nc, faultCounter, { consumer, ackWaitMs: 2000 })
      const runner = new ProjectionRunner({
        projection: faultCounter,
        sql: projector,
        live,
        retryDelayMs: 100,
        ...options,
      })
      defer(() => within(runner.stop(), 10_000, 'projection stop'))
      return runner
    },
    client: (tenant) => env.server.connect(tenant, reconnecting),
    defer,
    async cleanup() {
      for (const step of steps.reverse()) await step().catch(() => {})
      await env.cleanup()
    },
  }
}
