import { type IncomingMessage, type ServerResponse, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { NatsConnection } from '@nats-io/transport-node'
import type { Sql } from '@eventplane/store-pg'
import { type Logger, errorFields, silentLogger } from '../logger.ts'
import { type EventplaneMetrics, withTimeout } from './metrics.ts'

/** One readiness look; `ok: false` makes `/readyz` answer 503. Extra fields are shown in its JSON body. */
export interface CheckOutcome {
  ok: boolean
  [detail: string]: unknown
}

export type ReadinessCheck = () => Promise<CheckOutcome>

export interface OpsServerOptions {
  /** TCP port; 0 picks a free one (see `OpsServer.port`). */
  port: number
  /** Default 127.0.0.1: the endpoints say how the process is doing and are not meant for the network. */
  host?: string
  metrics: EventplaneMetrics
  /** Named readiness looks (postgres, nats, relay, ...), run on each `/readyz`, each bounded by `checkTimeoutMs`. */
  checks: Record<string, ReadinessCheck>
  /** Default 2000 ms. */
  checkTimeoutMs?: number
  logger?: Logger
}

export interface OpsServer {
  /** `http://host:port`. */
  readonly url: string
  readonly port: number
  close(): Promise<void>
}

/**
 * Serves a process's health on HTTP: `GET /healthz` is 200 while the event
 * loop answers (alive); `GET /readyz` runs the readiness checks and is 200
 * when all pass, 503 otherwise, with `{ ready, checks: { name: { ok, ... } } }`;
 * `GET /metrics` is the Prometheus text format (collectors run first). Any
 * other path is 404, any other method 405. Nothing here reads a request body.
 */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const logger = options.logger ?? silentLogger
  const timeoutMs = options.checkTimeoutMs ?? 2000
  const readiness = async (): Promise<{ ready: boolean; checks: Record<string, CheckOutcome> }> => {
    const entries = await Promise.all(
      Object.entries(options.checks).map(async ([name, check]): Promise<[string, CheckOutcome]> => {
        const late: CheckOutcome = { ok: false, error: `no answer within ${timeoutMs} ms` }
        const answer = check().catch((e: unknown): CheckOutcome => ({ ok: false, error: errorFields(e).err }))
        const outcome = await Promise.race([answer, sleep(timeoutMs, late, { ref: false })])
        return [name, outcome]
      }),
    )
    const checks = Object.fromEntries(entries)
    return { ready: entries.every(([, o]) => o.ok), checks }
  }

  const send = (res: ServerResponse, status: number, type: string, body: string): void => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' })
    res.end(body)
  }
  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'method not allowed\n')
    if (path === '/healthz') return send(res, 200, 'text/plain', 'ok\n')
    if (path === '/readyz') {
      const r = await readiness()
      return send(res, r.ready ? 200 : 503, 'application/json', `${JSON.stringify(r)}\n`)
    }
    if (path === '/metrics') {
      // The connection gauges follow the same looks as /readyz.
      await readiness()
      return send(res, 200, options.metrics.contentType, await options.metrics.render())
    }
    send(res, 404, 'text/plain', 'not found\n')
  }

  const server = createServer((req, res) => {
    serve(req, res).catch((e: unknown) => {
      logger.warn(errorFields(e), 'ops endpoint failed')
      if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n')
      else res.end()
    })
  })
  server.keepAliveTimeout = 5000
  const host = options.host ?? '127.0.0.1'
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  logger.info({ ops: url }, 'ops endpoints serving /healthz /readyz /metrics')
  return {
    url,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

/** Readiness of a PostgreSQL pool: `select 1` answers within 1.5 s. Sets `eventplane_connection_up{connection}`. */
export function postgresCheck(sql: Sql, metrics: EventplaneMetrics, connection = 'postgres'): ReadinessCheck {
  return async () => {
    let error = 'no answer within 1500 ms'
    const ok = await withTimeout(
      sql`select 1`.execute().catch((e: unknown) => {
        error = errorFields(e).err ?? 'failed'
        throw e
      }),
      1500,
    )
    metrics.connection.set({ connection }, ok ? 1 : 0)
    return ok ? { ok } : { ok, error }
  }
}

/** Readiness of a NATS connection: a round trip to the server answers within a second. Sets the connection gauge. */
export function natsCheck(nc: NatsConnection, metrics: EventplaneMetrics): ReadinessCheck {
  return async () => {
    const ok = !nc.isClosed() && (await withTimeout(nc.rtt(), 1000))
    metrics.connection.set({ connection: 'nats' }, ok ? 1 : 0)
    return ok ? { ok } : { ok, error: nc.isClosed() ? 'the connection is closed' : 'no round trip within 1000 ms' }
  }
}

/**
 * Readiness of a relay: ready while it holds its lease (`active`) and also in
 * `standby` (it works as designed, waiting to take over) or `starting`; not
 * ready when `retrying` (PostgreSQL or NATS failed), `new` or `stopped`. The
 * outcome says which: `{ ok, state, active }`.
 */
export function relayCheck(relay: { readonly name: string; readonly state: string }): ReadinessCheck {
  return async () => {
    const state = relay.state
    return { ok: state === 'active' || state === 'standby' || state === 'starting', state, active: state === 'active' }
  }
}
