/**
 * bench:bus part 3 — submitIntent through the gateway (NATS request/reply →
 * validate → PgEventStore.append → reply) vs PgEventStore.append called
 * directly, same concurrency and pool size, so the ratio is the cost of the
 * request/reply edge.
 */
import { EventFactory } from '@eventplane/core'
import { PgEventStore, type Sql } from '@eventplane/store-pg'
import { startGateway, submitIntent } from '@eventplane/bus-nats'
import type { NatsConnection } from '@nats-io/transport-node'
import { type Comparison, compare, measure } from './lib.ts'
import { BENCH_DATA } from './bus-relay.ts'

export interface GatewayBenchOptions {
  /** eventplane_intent_writer pool behind the gateway. */
  gatewaySql: Sql
  /** eventplane_intent_writer pool for the direct appends (same size). */
  directSql: Sql
  gatewayNc: NatsConnection
  clientNc: NatsConnection
  requests: number
  rounds: number
  concurrency: readonly number[]
}

/** One comparison per concurrency level; streams are spread so writers do not queue on one stream's lock. */
export async function benchGateway(o: GatewayBenchOptions): Promise<Comparison[]> {
  // The gateway's own cost against a direct append: no tenant limit may be what is measured.
  const unlimited = Number.POSITIVE_INFINITY
  const gateway = await startGateway({
    nc: o.gatewayNc,
    store: new PgEventStore(o.gatewaySql),
    limits: {
      perTenant: { ratePerSecond: unlimited, bytesPerSecond: unlimited, maxConcurrent: 64, maxInFlight: 1024 },
      concurrency: o.gatewaySql.options.max,
    },
  })
  const direct = new PgEventStore(o.directSql)
  const factory = EventFactory.forTenant('benchgw', { causedBy: 'user:bench' })
  let round = 0
  const stream = (side: string, c: number, i: number) => ({
    tenant: 'benchgw',
    category: 'deployment',
    id: `${side}${round}-${i % (c * 4)}`,
  })
  try {
    const results: Comparison[] = []
    for (const c of o.concurrency) {
      results.push(
        await compare(
          `gateway submitIntent vs direct append, concurrency ${c}`,
          Number.NaN,
          o.rounds,
          () => {
            round++
            return measure(o.requests, c, 1, (i) => {
              const s = stream('a', c, i)
              return direct.append(s, [factory.intent(s, 'scaled', BENCH_DATA)])
            })
          },
          () =>
            measure(o.requests, c, 1, (i) => {
              const s = stream('g', c, i)
              return submitIntent(o.clientNc, factory.intent(s, 'scaled', BENCH_DATA))
            }),
        ),
      )
    }
    return results
  } finally {
    await gateway.stop()
  }
}
