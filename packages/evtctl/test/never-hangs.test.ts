import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { createServer as createHttpServer } from 'node:http'
import { type AddressInfo, type Server, connect, createServer } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { EventFactory } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { findNatsServerBinary } from '@eventplane/bus-nats/testing'
import { CONNECT_TIMEOUT_S } from '../src/session.ts'
import { BIN, failureLine, killAll, runCli, startCli } from './helpers.ts'

/** Node and tsx start in about a second; a hang is anything past the connect timeout plus this. */
const STARTUP_MS = 3000

const listen = (server: Server): Promise<number> =>
  new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)))

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const started = Date.now()
  const value = await fn()
  return [value, Date.now() - started]
}

describe('evtctl never hangs: wrong services, Ctrl-C, closed pipes, root causes', () => {
  let db: TestDatabase
  let http: Server
  let silent: Server
  let httpPort: number
  let silentPort: number
  let plainNats: ChildProcess | undefined
  let plainNatsPort: number
  const silentSockets = new Set<import('node:net').Socket>()

  before(async () => {
    db = await createTestDatabase('ep_cli_hangs')
    // An HTTP server answers a PostgreSQL startup with "400 Bad Request" and closes; postgres.js retries that forever.
    http = createHttpServer((_req, res) => res.end('hello'))
    httpPort = await listen(http)
    // A listener that accepts and never says anything.
    silent = createServer((socket) => silentSockets.add(socket))
    silentPort = await listen(silent)

    const probe = createServer()
    plainNatsPort = await listen(probe)
    await new Promise((r) => probe.close(r))
    plainNats = spawn(findNatsServerBinary(), ['-a', '127.0.0.1', '-p', String(plainNatsPort)], { stdio: 'ignore' })
    for (let i = 0; i < 100; i++) {
      const up = await new Promise<boolean>((resolve) => {
        const s = connect(plainNatsPort, '127.0.0.1')
        s.once('connect', () => resolve(true)).once('error', () => resolve(false))
        s.once('connect', () => s.destroy())
      })
      if (up) break
      await sleep(50)
    }

    const store = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    const acme = EventFactory.forTenant('acme', { causedBy: 'user:alice' })
    const big = { tenant: 'acme', category: 'deployment', id: 'big' }
    const padding = 'x'.repeat(500)
    for (let batch = 0; batch < 2; batch++)
      await store.append(
        big,
        Array.from({ length: 1000 }, (_, i) => acme.intent(big, 'noted', { i, padding })),
      )
  })
  after(async () => {
    killAll()
    for (const s of silentSockets) s.destroy()
    plainNats?.kill('SIGKILL')
    await Promise.all([new Promise((r) => http.close(r)), new Promise((r) => silent.close(r)), db?.drop()])
  })

  test('an HTTP server on the PostgreSQL port fails status --no-nats and read within 5 s with one line', async () => {
    for (const args of [
      ['status', '--no-nats'],
      ['read', 'acme/deployment/web'],
    ]) {
      const [r, ms] = await timed(() =>
        startCli([...args, '--database-url', `postgres://postgres@127.0.0.1:${httpPort}/shop`]).done(15_000),
      )
      assert.ok(ms < 5000, `${args[0]} took ${ms} ms`)
      assert.equal(r.code, 1, r.stderr)
      const failure = failureLine(r)
      assert.equal(failure.code, 'cli.config')
      assert.match(
        failure.message,
        new RegExp(
          `^the server at 127\\.0\\.0\\.1:${httpPort} is not PostgreSQL \\(it answered "HTTP/1\\.1 400 Bad Request"\\)`,
        ),
      )
      assert.match(failure.message, /database "shop" as role "eventplane_(operator|reader)"/)
    }
  })

  test('a listener that never answers fails within the connect timeout, naming database and role', async () => {
    const [r, ms] = await timed(() =>
      startCli([
        'read',
        'acme/deployment/web',
        '--database-url',
        `postgres://postgres@127.0.0.1:${silentPort}/shop`,
      ]).done(20_000),
    )
    assert.ok(ms < CONNECT_TIMEOUT_S * 1000 + STARTUP_MS, `took ${ms} ms`)
    assert.equal(r.code, 3)
    assert.match(
      failureLine(r).message,
      new RegExp(
        `^no PostgreSQL answer within 5 s for database "shop" as role "eventplane_reader" at 127\\.0\\.0\\.1:${silentPort}`,
      ),
    )
  })

  test('a wrong service on the NATS port fails within the connect timeout with one line', async () => {
    const [r, ms] = await timed(() =>
      runCli([
        'publish',
        'acme/deployment/web',
        'create',
        '--data',
        '{}',
        '--nats-url',
        `nats://127.0.0.1:${httpPort}`,
      ]),
    )
    assert.ok(ms < CONNECT_TIMEOUT_S * 1000 + STARTUP_MS, `took ${ms} ms`)
    assert.equal(r.code, 3)
    assert.equal(
      failureLine(r).message,
      `cannot connect to NATS at nats://127.0.0.1:${httpPort}: no NATS server answered within 5 s: is a NATS server listening there?`,
    )
  })

  test('the first SIGINT stops a command stuck connecting: exit 130 at once', async () => {
    const cli = startCli([
      'status',
      '--no-nats',
      '--log-level',
      'debug',
      '--database-url',
      `postgres://postgres@127.0.0.1:${silentPort}/shop`,
    ])
    await cli.waitFor((s) => s.includes('connecting to PostgreSQL'), 10_000, 'stderr')
    const sent = Date.now()
    cli.child.kill('SIGINT')
    const r = await cli.done(10_000)
    assert.ok(Date.now() - sent < 2500, `stopped ${Date.now() - sent} ms after SIGINT`)
    assert.equal(r.code, 130)
    assert.match(r.stderr.trimEnd().split('\n').at(-1)!, /^evtctl: cli\.interrupted: interrupted by SIGINT$/)
  })

  test('read and export into a closed pipe (| head -1) end quietly with exit 0', async () => {
    for (const args of ['read acme/deployment/big', 'export --tenant acme']) {
      const script = `set -o pipefail; node ${BIN} ${args} | head -1; echo "exit=\${PIPESTATUS[0]}" >&2`
      const r = spawnSync('bash', ['-c', script], {
        env: { ...process.env, EVENTPLANE_DATABASE_URL: db.url },
        encoding: 'utf8',
        timeout: 30_000,
      })
      assert.equal(r.stdout.split('\n').filter(Boolean).length, 1, args)
      assert.equal(r.stderr, 'exit=0\n', `${args}: ${r.stderr}`)
    }
  })

  test('up against a server without JetStream says so at once: exit 1, one line, the URL and the fix', async () => {
    const url = `nats://127.0.0.1:${plainNatsPort}`
    const [r, ms] = await timed(() =>
      runCli(['up', '--nats-url', url, '--domain', '@eventplane/example-deployments'], {
        env: { EVENTPLANE_DATABASE_URL: db.url },
      }),
    )
    assert.ok(ms < 5000, `took ${ms} ms`)
    assert.equal(r.code, 1, r.stderr)
    const failure = failureLine(r)
    assert.equal(failure.code, 'cli.config')
    assert.match(failure.message, new RegExp(`^JetStream is not enabled on ${url}/?: start nats-server with -js`))
  })

  test('more than 1 MiB on --data - is a usage error (exit 1), not an internal one', async () => {
    const r = await runCli(['publish', 'acme/deployment/web', 'create', '--data', '-'], {
      input: `{"x":"${'a'.repeat(1024 * 1024)}"}`,
    })
    assert.equal(r.code, 1, r.stderr)
    const failure = failureLine(r)
    assert.equal(failure.code, 'core.payload_too_large')
    assert.match(failure.message, /^stdin holds more than 1048576 bytes/)
  })
})
