import { createRequire } from 'node:module'
import type { Counter, Gauge, Registry } from 'prom-client'

/**
 * prom-client, loaded at the first EventplaneMetrics: every evtctl command imports this package, and only
 * long-running processes serve metrics (the import costs about 70 ms of CPU at startup).
 */
let promClient: typeof import('prom-client') | undefined
function prom(): typeof import('prom-client') {
  promClient ??= createRequire(import.meta.url)('prom-client') as typeof import('prom-client')
  return promClient
}

/** The label every tenant past the cap is counted under. */
export const OTHER_TENANTS = '_other'

/** Distinct tenant label values per process, by default. */
export const DEFAULT_TENANT_LABEL_CAP = 100

/** How long one collector (a PostgreSQL or NATS look at scrape time) may take before the scrape goes on without it. */
const COLLECT_TIMEOUT_MS = 2000

export interface EventplaneMetricsOptions {
  /**
   * Distinct tenants given their own label value; later tenants share
   * {@link OTHER_TENANTS}, so a flood of made-up tenant names (the submit
   * subject's tenant is the client's choice) cannot grow the series without bound.
   * Default {@link DEFAULT_TENANT_LABEL_CAP}; 0 puts every tenant under `_other`.
   */
  tenantLabelCap?: number
}

/** A look taken at scrape time (lag, oldest transaction, connection state); it sets gauges and may fail. */
export type MetricsCollector = () => Promise<void>

function relayMetrics(registers: Registry[]) {
  const { Counter, Gauge } = prom()
  return {
    published: new Counter({
      name: 'eventplane_relay_published_events_total',
      help: 'Events the relay published and JetStream acknowledged (duplicates included)',
      labelNames: ['relay'] as const,
      registers,
    }),
    duplicates: new Counter({
      name: 'eventplane_relay_duplicate_events_total',
      help: 'Acknowledgements that said JetStream already held the event (a republish after a failed publish)',
      labelNames: ['relay'] as const,
      registers,
    }),
    checkpoint: new Gauge({
      name: 'eventplane_relay_checkpoint_position',
      help: 'Global position of the last event the relay stored in its checkpoint',
      labelNames: ['relay'] as const,
      registers,
    }),
    lagEvents: new Gauge({
      name: 'eventplane_relay_lag_events',
      help: 'Committed events after the relay checkpoint (held-back ones included)',
      labelNames: ['relay'] as const,
      registers,
    }),
    lagSeconds: new Gauge({
      name: 'eventplane_relay_lag_seconds',
      help: 'Age of the oldest readable event the relay has not published yet; 0 when caught up',
      labelNames: ['relay'] as const,
      registers,
    }),
    active: new Gauge({
      name: 'eventplane_relay_active',
      help: '1 while this relay holds its lease and publishes, 0 in standby, retrying or stopped',
      labelNames: ['relay'] as const,
      registers,
    }),
    publishRefusals: new Counter({
      name: 'eventplane_relay_publish_refusals_total',
      help: 'Publishes JetStream refused, by its API error code (10077: the stream could not store it, e.g. full at max_bytes); the relay retries',
      labelNames: ['relay', 'api_code'] as const,
      registers,
    }),
    oldestTransaction: new Gauge({
      name: 'eventplane_relay_oldest_transaction_age_seconds',
      help: "Age of the oldest transaction holding back the log's gap-safe read: this database's, or a prepared one (not another database's); 0 when none",
      labelNames: ['relay'] as const,
      registers,
    }),
  }
}

function gatewayMetrics(registers: Registry[]) {
  const { Counter, Gauge, Histogram } = prom()
  return {
    requests: new Counter({
      name: 'eventplane_gateway_requests_total',
      help: 'Submit requests by tenant and outcome (ok, an error code, rate_limited, dropped)',
      labelNames: ['tenant', 'outcome'] as const,
      registers,
    }),
    duration: new Histogram({
      name: 'eventplane_gateway_request_duration_seconds',
      help: 'Time from a request being admitted to its answer (queue wait, validation and append)',
      labelNames: ['tenant'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    rateLimited: new Counter({
      name: 'eventplane_gateway_rate_limited_total',
      help: 'Requests refused at arrival with bus.rate_limited',
      labelNames: ['tenant'] as const,
      registers,
    }),
    dropped: new Counter({
      name: 'eventplane_gateway_dropped_total',
      help: 'Requests dropped unanswered: no reply subject in the requesting tenant space',
      registers,
    }),
    heldRequests: new Gauge({
      name: 'eventplane_gateway_held_requests',
      help: 'Requests held now (waiting or running)',
      registers,
    }),
    heldBytes: new Gauge({ name: 'eventplane_gateway_held_bytes', help: 'Request bytes held now', registers }),
  }
}

function runtimeMetrics(registers: Registry[]) {
  const { Counter, Gauge } = prom()
  return {
    projectionApplied: new Counter({
      name: 'eventplane_projection_applied_events_total',
      help: 'Events a projection applied (catch-up and live)',
      labelNames: ['projection'] as const,
      registers,
    }),
    projectionCheckpoint: new Gauge({
      name: 'eventplane_projection_checkpoint_position',
      help: 'Global position of the projection checkpoint',
      labelNames: ['projection'] as const,
      registers,
    }),
    projectionLag: new Gauge({
      name: 'eventplane_projection_lag_events',
      help: 'Committed events after the projection checkpoint, of every tenant (an upper bound)',
      labelNames: ['projection'] as const,
      registers,
    }),
    projectionLive: new Gauge({
      name: 'eventplane_projection_live',
      help: '1 once the projection caught up and consumes live, 0 while it catches up or resyncs',
      labelNames: ['projection'] as const,
      registers,
    }),
    controllerReconciled: new Counter({
      name: 'eventplane_controller_reconciled_total',
      help: 'Deliveries a controller reconciled and acknowledged',
      labelNames: ['controller'] as const,
      registers,
    }),
    controllerRetries: new Counter({
      name: 'eventplane_controller_retries_total',
      help: 'Reconcile attempts that failed with a transient error (or a dependency unavailable) and were retried',
      labelNames: ['controller'] as const,
      registers,
    }),
    controllerWaiting: new Gauge({
      name: 'eventplane_controller_waiting_deliveries',
      help: 'Deliveries a controller holds while PostgreSQL or NATS is unavailable (retried, never parked for it)',
      labelNames: ['controller'] as const,
      registers,
    }),
    controllerParked: new Counter({
      name: 'eventplane_controller_parked_total',
      help: 'Events a controller parked with reconcile_failed',
      labelNames: ['controller'] as const,
      registers,
    }),
    controllerLag: new Gauge({
      name: 'eventplane_controller_lag_events',
      help: 'Events waiting for the controller: pending in its durable consumer plus delivered and not yet acknowledged',
      labelNames: ['controller'] as const,
      registers,
    }),
  }
}

/**
 * The Prometheus metrics of one eventplane process (prom-client, its own
 * registry, so two in one process, as in tests, never collide). The relay,
 * the gateway and the runners take it as their `metrics` option and count
 * into it; what needs a look at PostgreSQL or NATS (lag, the oldest
 * transaction, connection state) is a collector run at scrape time, each
 * bounded by a timeout so a dead dependency never hangs a scrape.
 */
export class EventplaneMetrics {
  readonly registry: Registry = new (prom().Registry)()
  readonly relay: ReturnType<typeof relayMetrics>
  readonly gateway: ReturnType<typeof gatewayMetrics>
  readonly runtime: ReturnType<typeof runtimeMetrics>
  readonly connection: Gauge<'connection'>
  readonly collectFailures: Counter<'collector'>
  readonly tenantLabelCap: number
  readonly #tenants = new Set<string>()
  readonly #collectors = new Map<string, MetricsCollector>()

  constructor(options: EventplaneMetricsOptions = {}) {
    const cap = options.tenantLabelCap ?? DEFAULT_TENANT_LABEL_CAP
    if (!Number.isSafeInteger(cap) || cap < 0) throw new RangeError('tenantLabelCap must be a non-negative integer')
    this.tenantLabelCap = cap
    const registers = [this.registry]
    this.relay = relayMetrics(registers)
    this.gateway = gatewayMetrics(registers)
    this.runtime = runtimeMetrics(registers)
    const { Counter, Gauge } = prom()
    this.connection = new Gauge({
      name: 'eventplane_connection_up',
      help: '1 when the last look at the connection succeeded (postgres: select 1; nats: a round trip)',
      labelNames: ['connection'] as const,
      registers,
    })
    this.collectFailures = new Counter({
      name: 'eventplane_metrics_collect_failures_total',
      help: 'Scrape-time looks that failed or timed out (their gauges keep the last value)',
      labelNames: ['collector'] as const,
      registers,
    })
  }

  /** The label value for `tenant`: itself for the first `tenantLabelCap` tenants seen, `_other` after. */
  tenant(tenant: string): string {
    if (this.#tenants.has(tenant)) return tenant
    if (this.#tenants.size >= this.tenantLabelCap) return OTHER_TENANTS
    this.#tenants.add(tenant)
    return tenant
  }

  /** Runs `collect` before each scrape, under `name` (replacing one of the same name); returns the removal. */
  addCollector(name: string, collect: MetricsCollector): () => void {
    this.#collectors.set(name, collect)
    return () => {
      if (this.#collectors.get(name) === collect) this.#collectors.delete(name)
    }
  }

  /** Runs the collectors (each bounded, failures counted), then renders the Prometheus text format. */
  async render(): Promise<string> {
    await Promise.all(
      [...this.#collectors].map(async ([name, collect]) => {
        if (!(await withTimeout(collect(), COLLECT_TIMEOUT_MS))) this.collectFailures.inc({ collector: name })
      }),
    )
    return this.registry.metrics()
  }

  get contentType(): string {
    return this.registry.contentType
  }
}

/** True when `work` settled successfully within `ms`. */
export async function withTimeout(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(resolve, ms, false)
  })
  try {
    return await Promise.race([work.then(() => true), late])
  } catch {
    return false
  } finally {
    clearTimeout(timer)
  }
}
