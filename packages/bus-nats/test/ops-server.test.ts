import assert from 'node:assert/strict'
import { networkInterfaces } from 'node:os'
import { describe, test } from 'node:test'
import { DEFAULT_DATABASE_URL, connectPg } from '@eventplane/store-pg'
import {
  type CheckOutcome,
  EventplaneMetrics,
  type OpsServer,
  postgresCheck,
  relayCheck,
  startOpsServer,
} from '@eventplane/bus-nats'

// The ops server's own rules, on a real HTTP server with readiness checks given as functions (the relay and gateway
// processes with real PostgreSQL and NATS behind them are tests/ops/ops-endpoints.test.ts).

const PG_URL = process.env.EVENTPLANE_DATABASE_URL ?? DEFAULT_DATABASE_URL

async function request(server: OpsServer, path: string, method = 'GET'): Promise<{ status: number; body: string }> {
  const res = await fetch(`${server.url}${path}`, { method, signal: AbortSignal.timeout(10_000) })
  return { status: res.status, body: await res.text() }
}

/** The value of one series in a scrape; undefined when absent. */
function series(scrape: string, name: string): number | undefined {
  const line = scrape.split('\n').find((l) => l.startsWith(`${name} `))
  return line === undefined ? undefined : Number(line.slice(name.length + 1))
}

const ok = async (): Promise<CheckOutcome> => ({ ok: true })

describe('the ops server: loopback by default, readiness of every check, methods, scrape-time looks', () => {
  test('with no host it listens on 127.0.0.1 only: no other address of the machine answers', async (t) => {
    const server = await startOpsServer({ port: 0, metrics: new EventplaneMetrics(), checks: {} })
    try {
      assert.equal(server.url, `http://127.0.0.1:${server.port}`)
      assert.equal((await request(server, '/healthz')).status, 200)
      const external = Object.values(networkInterfaces())
        .flat()
        .find((a) => a !== undefined && !a.internal && a.family === 'IPv4')
      if (external === undefined) return t.diagnostic('no non-loopback IPv4 address here: only the URL was checked')
      await assert.rejects(
        fetch(`http://${external.address}:${server.port}/healthz`, { signal: AbortSignal.timeout(5000) }),
        `${external.address} must not answer`,
      )
    } finally {
      await server.close()
    }
  })

  test('/readyz is 200 only when every check passes; one failing, throwing or silent check makes it 503 and says which', async () => {
    let pgUp = true
    const server = await startOpsServer({
      port: 0,
      metrics: new EventplaneMetrics(),
      checkTimeoutMs: 300,
      checks: {
        nats: ok,
        postgres: async () => (pgUp ? { ok: true } : { ok: false, error: 'down' }),
      },
    })
    try {
      const up = await request(server, '/readyz')
      assert.equal(up.status, 200, up.body)
      assert.deepEqual(JSON.parse(up.body), { ready: true, checks: { nats: { ok: true }, postgres: { ok: true } } })
      pgUp = false
      const down = await request(server, '/readyz')
      assert.equal(down.status, 503, down.body)
      assert.deepEqual(JSON.parse(down.body), {
        ready: false,
        checks: { nats: { ok: true }, postgres: { ok: false, error: 'down' } },
      })
    } finally {
      await server.close()
    }

    const hung = await startOpsServer({
      port: 0,
      metrics: new EventplaneMetrics(),
      checkTimeoutMs: 300,
      checks: {
        nats: ok,
        silent: () => new Promise<CheckOutcome>(() => {}),
        thrown: async () => {
          throw new Error('boom')
        },
      },
    })
    try {
      const r = await request(hung, '/readyz')
      assert.equal(r.status, 503, r.body)
      const { checks } = JSON.parse(r.body)
      assert.deepEqual(checks.silent, { ok: false, error: 'no answer within 300 ms' })
      assert.equal(checks.thrown.ok, false)
      assert.equal(checks.nats.ok, true)
    } finally {
      await hung.close()
    }
  })

  test('only GET and HEAD are served (405 otherwise); an unknown path is 404', async () => {
    const server = await startOpsServer({ port: 0, metrics: new EventplaneMetrics(), checks: { a: ok } })
    try {
      for (const method of ['POST', 'PUT', 'DELETE'])
        for (const path of ['/healthz', '/readyz', '/metrics'])
          assert.equal((await request(server, path, method)).status, 405, `${method} ${path}`)
      assert.equal((await request(server, '/readyz', 'HEAD')).status, 200)
      assert.equal((await request(server, '/nope')).status, 404)
    } finally {
      await server.close()
    }
  })

  test('a relay is ready while active, standing by or starting; not while retrying, new or stopped', async () => {
    const outcomes: Record<string, CheckOutcome> = {}
    for (const state of ['active', 'standby', 'starting', 'retrying', 'new', 'stopped'])
      outcomes[state] = await relayCheck({ name: 'main', state })()
    assert.deepEqual(outcomes, {
      active: { ok: true, state: 'active', active: true },
      standby: { ok: true, state: 'standby', active: false },
      starting: { ok: true, state: 'starting', active: false },
      retrying: { ok: false, state: 'retrying', active: false },
      new: { ok: false, state: 'new', active: false },
      stopped: { ok: false, state: 'stopped', active: false },
    })
  })

  test('a scrape runs the readiness checks first (the connection gauges follow them) and counts failed or silent collectors', async () => {
    const metrics = new EventplaneMetrics()
    const sql = connectPg(PG_URL, { max: 1 })
    let closed = false
    const server = await startOpsServer({ port: 0, metrics, checks: { postgres: postgresCheck(sql, metrics) } })
    try {
      metrics.addCollector('fails', async () => {
        throw new Error('no answer')
      })
      metrics.addCollector('silent', () => new Promise<void>(() => {}))
      metrics.addCollector('works', async () => {})
      // No /readyz before: the scrape itself looks at PostgreSQL.
      let scrape = (await request(server, '/metrics')).body
      assert.equal(series(scrape, 'eventplane_connection_up{connection="postgres"}'), 1)
      assert.equal(series(scrape, 'eventplane_metrics_collect_failures_total{collector="fails"}'), 1)
      assert.equal(series(scrape, 'eventplane_metrics_collect_failures_total{collector="silent"}'), 1)
      assert.equal(series(scrape, 'eventplane_metrics_collect_failures_total{collector="works"}'), undefined)
      await sql.end({ timeout: 0 })
      closed = true
      scrape = (await request(server, '/metrics')).body
      assert.equal(series(scrape, 'eventplane_connection_up{connection="postgres"}'), 0, 'the gauge is reset to 0')
      const r = await request(server, '/readyz')
      assert.equal(r.status, 503, r.body)
      assert.equal(JSON.parse(r.body).checks.postgres.ok, false)
    } finally {
      await server.close()
      if (!closed) await sql.end({ timeout: 0 })
    }
  })
})
