import { type Server, type Socket, connect, createServer } from 'node:net'
import type { BusEnv, ServiceProcess } from '../../packages/bus-nats/test/fixtures.ts'
import type { CliResult, RunOptions } from '../../packages/evtctl/test/helpers.ts'

/** The ops endpoint URL a service process logged (EVENTPLANE_OPS_PORT=0 picks a free port). */
export async function opsUrl(service: ServiceProcess): Promise<string> {
  const msg = 'ops endpoints serving /healthz /readyz /metrics'
  // Generous: under load on a shared machine a tsx process took over 20 s to start.
  await service.waitForLog(msg, 120_000)
  const line = service.logs.find((l) => l.msg === msg)!
  return String(line.ops)
}

/**
 * `evtctl status` as the operator runs it on `env` (its database, its nats-server, operator.creds) with `env`'s other
 * settings added, through `cli` (runCli: the process; pollCli: the same in this process, for polls).
 * `--stuck-after` an hour: other people's transactions on this shared server are not what these tests check.
 */
export const operatorStatus =
  (cli: (args: readonly string[], options?: RunOptions) => Promise<CliResult>, env: () => BusEnv, more = {}) =>
  (...args: string[]): Promise<CliResult> =>
    cli(['status', '--stuck-after', '3600000', ...args], {
      env: {
        EVENTPLANE_DATABASE_URL: env().db.url,
        EVENTPLANE_NATS_URL: env().server.url,
        EVENTPLANE_NATS_CREDS: env().server.credentials.operator!.creds,
        ...more,
      },
      // A hang guard only: at load 23 one status took over 30 s here, start-up included.
      timeoutMs: 120_000,
    })

/** GET `path`: status and body. */
export async function get(base: string, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(10_000) })
  return { status: res.status, body: await res.text() }
}

/** The value of one series in a Prometheus text scrape (`name{labels}`, labels in the order the registry writes them); 0 when absent. */
export function metric(scrape: string, series: string): number {
  for (const line of scrape.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1))
  }
  return 0
}

/** Every label set of metric `name` present in a scrape (e.g. `{tenant="acme",outcome="ok"}`). */
export function seriesOf(scrape: string, name: string): string[] {
  return scrape
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`))
    .map((l) => l.slice(name.length, l.lastIndexOf(' ')))
}

/**
 * A TCP proxy in front of PostgreSQL that a test can cut (every connection
 * closed, new ones refused) and restore on the same port: a PostgreSQL
 * "outage" for one process without touching the shared server.
 */
export interface PgProxy {
  port: number
  cut(): Promise<void>
  restore(): Promise<void>
  close(): Promise<void>
}

/** The PostgreSQL server the test databases are on (EVENTPLANE_DATABASE_URL's host and port, or the local one). */
function pgServer(): { host: string; port: number } {
  const u = new URL(process.env.EVENTPLANE_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres')
  return { host: u.hostname, port: Number(u.port || 5432) }
}

export async function startPgProxy(target = pgServer()): Promise<PgProxy> {
  const sockets = new Set<Socket>()
  let server: Server
  const listen = (port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server = createServer((client) => {
        const upstream = connect(target.port, target.host)
        for (const s of [client, upstream]) {
          sockets.add(s)
          s.on('close', () => sockets.delete(s))
          s.on('error', () => {})
        }
        client.pipe(upstream).pipe(client)
      })
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => resolve((server.address() as { port: number }).port))
    })
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      for (const s of sockets) s.destroy()
      server.close(() => resolve())
    })
  const port = await listen(0)
  return { port, cut: stop, restore: async () => void (await listen(port)), close: stop }
}
