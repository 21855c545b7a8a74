import assert from 'node:assert/strict'
import { after, before } from 'node:test'
import { type EventData, EventFactory, RateLimited, isEventplaneError } from '@eventplane/core'
import { ROLES } from '@eventplane/store-pg'
import type { NatsConnection } from '@nats-io/transport-node'
import { submitIntent } from '../../src/gateway-client.ts'
import type { SubmitResult } from '../../src/gateway-request.ts'
import type { GatewayLimits } from '../../src/gateway-limits.ts'
import { type Gateway, type GatewayOptions, startGateway } from '../../src/gateway.ts'
import { type BusEnv, createBusEnv, within } from '../fixtures.ts'
import { GatedStore } from './gated-store.ts'

export type BenchTenant = 'acme' | 'globex'
const TENANTS: readonly BenchTenant[] = ['acme', 'globex']

/**
 * One suite's bench for the gateway's admission (gateway-limits, gateway-admission-edges): a bus, a
 * {@link GatedStore} whose appends the tests hold per tenant, a client connection per tenant, and the clock
 * (ms) the gateways it starts read their buckets by, which only the tests move.
 */
export interface AdmissionBench {
  /** The suite's bus (made before its tests; reading it earlier throws). */
  readonly env: BusEnv
  readonly store: GatedStore
  /** What `limits.now` answers in every gateway `withGateway` starts: set it to move time. */
  clock: number
  connection(tenant: BenchTenant): NatsConnection
  /** Intent number `n` of `tenant`: stream `<category>/s-<n % 4>`, data `{ n, ...extra }` (GatedStore records n). */
  intent(tenant: BenchTenant, n: number, extra?: EventData): ReturnType<EventFactory['intent']>
  /** Submits `intent(tenant, n, extra)` on the tenant's connection (10 s timeout). */
  submit(tenant: BenchTenant, n: number, extra?: EventData): Promise<SubmitResult>
  /**
   * Runs `fn` against a gateway with `limits` (refusals answered at once unless told) on a connection of its
   * own, then releases every held tenant and stops it.
   */
  withGateway(
    limits: GatewayLimits,
    fn: (gateway: Gateway, nc: NatsConnection) => Promise<void>,
    options?: Partial<GatewayOptions>,
  ): Promise<void>
}

/**
 * An {@link AdmissionBench} for the enclosing `describe` (bus `prefix`), its intents named `events`: made
 * before its tests, cleaned up after them.
 */
export function useAdmissionBench(prefix: string, events: { category: string; type: string }): AdmissionBench {
  let env: BusEnv | undefined
  let store: GatedStore | undefined
  const clients = new Map<BenchTenant, NatsConnection>()
  const made = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`read ${what} before the suite's admission bench was made`)
    return value
  }
  const factories = {
    acme: EventFactory.forTenant('acme', { causedBy: 'user:a' }),
    globex: EventFactory.forTenant('globex', { causedBy: 'user:g' }),
  }
  const bench: AdmissionBench = {
    get env() {
      return made(env, 'env')
    },
    get store() {
      return made(store, 'store')
    },
    clock: 0,
    connection: (tenant) => made(clients.get(tenant), `the ${tenant} connection`),
    intent: (tenant, n, extra = {}) =>
      factories[tenant].intent({ category: events.category, id: `s-${n % 4}` }, events.type, { n, ...extra }),
    submit: (tenant, n, extra = {}) =>
      submitIntent(bench.connection(tenant), bench.intent(tenant, n, extra), { timeoutMs: 10_000 }),
    async withGateway(limits, fn, options = {}) {
      const nc = await bench.env.natsAs('gateway')
      const gateway = await startGateway({
        nc,
        store: bench.store,
        limits: { refusalHoldMs: 0, now: () => bench.clock, ...limits },
        ...options,
      })
      try {
        await fn(gateway, nc)
      } finally {
        for (const tenant of TENANTS) bench.store.release(tenant)
        await within(gateway.stop(), 10_000, 'gateway stop')
      }
    },
  }
  before(async () => {
    env = await createBusEnv(prefix)
    store = new GatedStore(env.db.connect(ROLES.intentWriter, 8))
    for (const tenant of TENANTS) clients.set(tenant, await env.server.connect(tenant))
  })
  after(async () => {
    await env?.cleanup()
  })
  return bench
}

/** Awaits `p`, which must fail with `bus.rate_limited` (a RateLimited), and returns that error. */
export async function rateLimited(p: Promise<unknown>, failure = 'expected bus.rate_limited'): Promise<RateLimited> {
  const e = await p.then(
    () => assert.fail(failure),
    (e: unknown) => e,
  )
  assert.ok(e instanceof RateLimited, `a RateLimited, got ${String(e)}`)
  assert.ok(isEventplaneError(e, 'bus.rate_limited'))
  return e
}
