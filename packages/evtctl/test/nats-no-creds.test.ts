import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startNatsServer, type TestNatsServer } from '@eventplane/bus-nats/testing'
import { isEventplaneError } from '@eventplane/core'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { connect } from '@nats-io/transport-node'
import { LoginWatch, connectForCommand } from '../src/nats-login.ts'
import { UNREACHABLE_NATS, failureLine, killAll, runCli } from './helpers.ts'

/** A loopback listener that greets each connection with `greeting` (nothing when undefined) and then says nothing. */
async function mute(greeting: string | undefined): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    if (greeting !== undefined) socket.write(greeting)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `nats://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

// A server of the account model (nats-setup) with no credentials configured: the most common first mistake.
describe('NATS credentials not given to a server that requires them', () => {
  let db: TestDatabase
  let nats: TestNatsServer
  /** Another deployment: its own auth dir, operator and accounts, none of which `nats` knows. */
  let other: TestNatsServer

  before(async () => {
    db = await createTestDatabase('ep_cli_no_creds')
    ;[nats, other] = await Promise.all([startNatsServer({ tenants: ['acme'], monitoring: true }), startNatsServer()])
  })
  after(async () => {
    killAll()
    await Promise.all([nats?.stop(), other?.stop()])
    await db?.drop()
  })

  const hint = /^NATS at nats:\/\/127\.0\.0\.1:\d+ requires credentials and none were given: pass --nats-creds <file>/
  /** The line of a refusal after the server's look-up of an account it does not have (nats-login's LoginWatch). */
  const lookedUp =
    /^NATS at nats:\/\/127\.0\.0\.1:\d+ refused the credentials \(Authorization Violation\) after \d+\.\d s, the time its resolver takes to look for an account it does not have: likely creds of another deployment .*: check that the creds come from the nats-setup auth dir of this server \(the operator it trusts\)$/

  test('a one-shot command and a service each say so in one line: exit 4, bus.auth_failed', async () => {
    const env = { EVENTPLANE_DATABASE_URL: db.url, EVENTPLANE_NATS_URL: nats.url }
    for (const args of [['tail', '--tenant', 'acme', '--count', '1'], ['relay']]) {
      const r = await runCli(args, { env })
      assert.equal(r.code, 4, `${args[0]}: ${r.stderr}`)
      const lines = r.stderr.split('\n').filter((l) => l.startsWith('evtctl: '))
      assert.equal(lines.length, 1, r.stderr)
      const m = /^evtctl: ([a-z_.]+): (.+)$/.exec(lines[0]!)!
      assert.equal(m[1], 'bus.auth_failed', args[0])
      assert.match(m[2]!, hint, args[0])
    }
  })

  test('wrong credentials keep their own line (refused, not missing)', async () => {
    const r = await runCli(['tail', '--tenant', 'acme', '--count', '1'], {
      env: { EVENTPLANE_NATS_URL: nats.url, EVENTPLANE_NATS_USER: 'nobody', EVENTPLANE_NATS_PASSWORD: 'x' },
    })
    assert.equal(r.code, 4, r.stderr)
    const failure = failureLine(r)
    assert.equal(failure.code, 'bus.auth_failed')
    assert.doesNotMatch(failure.message, /none were given/)
  })

  test('a creds file the server refuses keeps its own line too (given, not missing)', async () => {
    // The relay's JWT with another user's seed: the nonce's signature does not match the JWT, the server refuses.
    const dir = mkdtempSync(join(tmpdir(), 'ep-no-creds-'))
    try {
      const seed = /-----BEGIN USER NKEY SEED-----\n(\S+)\n/
      const mine = readFileSync(nats.credentials.relay!.creds, 'utf8')
      const theirs = readFileSync(other.credentials.relay!.creds, 'utf8')
      const creds = join(dir, 'spliced.creds')
      writeFileSync(creds, mine.replace(seed.exec(mine)![1]!, seed.exec(theirs)![1]!), { mode: 0o600 })
      const r = await runCli(['tail', '--tenant', 'acme', '--count', '1'], {
        env: { EVENTPLANE_NATS_URL: nats.url, EVENTPLANE_NATS_CREDS: creds },
      })
      assert.equal(r.code, 4, r.stderr)
      const failure = failureLine(r)
      assert.equal(failure.code, 'bus.auth_failed')
      assert.doesNotMatch(failure.message, /none were given/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('no credentials and no server listening: unavailable (exit 3), not a credentials hint', async () => {
    const r = await runCli(['tail', '--tenant', 'acme', '--count', '1'], {
      env: { EVENTPLANE_NATS_URL: UNREACHABLE_NATS },
    })
    assert.equal(r.code, 3, r.stderr)
    const failure = failureLine(r)
    assert.equal(failure.code, 'bus.unavailable')
    assert.doesNotMatch(failure.message, /none were given/)
  })

  test("another deployment's creds: refused (exit 4) after the server's look-up, naming the likely causes, not 'no server answered'", async () => {
    // nats-server refuses an account its resolver does not have only after looking for it, 5 s (2.9.10): as long
    // as the connect timeout, which the refusal lost, and the line said no server had answered.
    const r = await runCli(['tail', '--tenant', 'acme', '--count', '1'], {
      env: { EVENTPLANE_NATS_URL: nats.url, EVENTPLANE_NATS_CREDS: other.credentials.relay!.creds },
    })
    assert.equal(r.code, 4, r.stderr)
    const failure = failureLine(r)
    assert.equal(failure.code, 'bus.auth_failed')
    assert.match(failure.message, lookedUp)
  })

  test("another deployment's creds: each service (relay, gateway, run, up) fails its start (exit 4) at the first refusal, with the command's line, naming the likely causes", async () => {
    // The services' connections wait for a server and reconnect (Session.serviceNats): they said only "NATS refused
    // the credentials: Authorization Violation" (relay, gateway, run; up connects as a command first), and nats.js
    // dialed such a login again before it gave up on the second refusal: a look-up each, 10-15 s. The server's
    // closed connections (monitoring) count the refused dials of each: one. One start each, side by side.
    const before = await refusedDials()
    const env = {
      EVENTPLANE_DATABASE_URL: db.url,
      EVENTPLANE_NATS_URL: nats.url,
      EVENTPLANE_DOMAIN: '@eventplane/example-deployments',
    }
    const users = { relay: 'relay', gateway: 'gateway', run: 'controller', up: 'operator' } as const
    const results = await Promise.all(
      Object.entries(users).map(async ([command, user]) => {
        const creds = other.credentials[user]!.creds
        return { command, r: await runCli([command], { env: { ...env, EVENTPLANE_NATS_CREDS: creds } }) }
      }),
    )
    // A service's stderr carries its log too (its start line): the failure is its one evtctl: line. All four
    // judged at once, so a failure shows each.
    const refused = (await refusedDials()).filter((dial) => dial.cid > Math.max(0, ...before.map((d) => d.cid)))
    const verdicts = results.map(({ command, r }) => {
      const lines = r.stderr.split('\n').filter((l) => l.startsWith('evtctl: '))
      const m = /^evtctl: ([a-z_.]+): (.+)$/.exec(lines[0] ?? '')
      const line = lines.length === 1 && m !== null && lookedUp.test(m[2]!) ? 'the look-up line' : lines.join(' | ')
      const dials = refused.filter((dial) => connectionOf[command]!.test(dial.name ?? '')).length
      return `${command}: exit ${r.code}, ${m?.[1]}, ${line}, refused ${dials} time(s)`
    })
    assert.deepEqual(
      verdicts,
      Object.keys(users).map((command) => `${command}: exit 4, bus.auth_failed, the look-up line, refused 1 time(s)`),
    )
  })

  /** Each service's NATS connection name (up's is its command connection's, connectForCommand). */
  const connectionOf: Record<string, RegExp> = {
    relay: /^eventplane-relay:/,
    gateway: /^eventplane-gateway$/,
    run: /^eventplane-runtime$/,
    up: /^evtctl$/,
  }

  /** The connections `nats` closed for a failed login (its monitoring's closed connections), by cid. */
  async function refusedDials(): Promise<{ cid: number; name?: string }[]> {
    const res = await fetch(`${nats.monitorUrl}/connz?state=closed&limit=10000`)
    const { connections } = (await res.json()) as { connections: { cid: number; name?: string; reason?: string }[] }
    return connections.filter((c) => c.reason === 'Authentication Failure')
  }

  test('a server that answers and never decides, and a listener that never answers: each said so (connectForCommand)', async () => {
    // In process, with short bounds: the CLI's are 5 s to answer and 10 s more to decide.
    const info = await mute('INFO {"server_id":"mute","version":"2.9.10","max_payload":1048576}\r\n')
    const silent = await mute(undefined)
    try {
      const failed = async (url: string): Promise<string> => {
        const e = await connectForCommand({ servers: url, maxReconnectAttempts: 0 }, url, 0.3, 0.3).then(
          () => assert.fail('connected'),
          (e: unknown) => e,
        )
        assert.ok(isEventplaneError(e, 'bus.unavailable'), String(e))
        return (e as Error).message
      }
      assert.match(
        await failed(info.url),
        /^cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+: a NATS server answered but did not accept the login within 0\.\d s: likely creds of another deployment/,
      )
      assert.equal(
        await failed(silent.url),
        `cannot connect to NATS at ${silent.url}: no NATS server answered within 0.3 s: is a NATS server listening there?`,
      )
    } finally {
      await Promise.all([info.close(), silent.close()])
    }
  })

  test("a service's connection waits for a server not up yet and past a dial that timed out, and ends at the first refusal that took a look-up (LoginWatch.firstConnectRetries)", async () => {
    // In process, with serviceNats' options and a 2 s dial timeout, against a loopback listener started once the
    // first dial was refused (nothing listening), which plays a server: its first login, the socket closed 1.2 s
    // after the INFO without a verdict (nats.js waits for the dial's timeout); its second, 'Authorization
    // Violation' 1.2 s after the INFO (a look-up's time, past LOOKED_UP_MS).
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo
        probe.close(() => resolve(port))
      })
    })
    const url = `nats://127.0.0.1:${port}`
    const logins: Socket[] = []
    const server = createServer((socket) => {
      const login = logins.push(socket)
      socket.on('error', () => {})
      socket.write('INFO {"server_id":"fake","version":"2.9.10","max_payload":1048576}\r\n')
      const verdict = () => (login === 1 ? socket.destroy() : socket.end("-ERR 'Authorization Violation'\r\n"))
      setTimeout(verdict, 1200).unref()
    })
    const listening = new Promise<void>((resolve) => server.once('listening', resolve))
    const watch = new LoginWatch()
    const retries = watch.firstConnectRetries(url, 2000)
    let dials = 0
    try {
      const e = await connect({
        servers: url,
        authenticator: watch.authenticator(undefined),
        waitOnFirstConnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        timeout: 2000,
        reconnectToServer: (pool, info) => {
          // The second dial: the first found nothing listening.
          if (++dials === 2) server.listen(port, '127.0.0.1')
          return retries(pool, info)
        },
      }).then(
        (nc) => nc.close().then(() => assert.fail('connected')),
        (e: unknown) => e,
      )
      const line = watch.lookedUpRefusal(e, url)
      assert.ok(isEventplaneError(line, 'bus.auth_failed'), String(e))
      assert.match(
        line.message,
        /^NATS at nats:\/\/127\.0\.0\.1:\d+ refused the credentials \(Authorization Violation\) after 1\.\d s, the time its resolver/,
      )
      assert.equal(logins.length, 2, 'the logins the listener saw: the one that timed out, the refused one')
      assert.ok(dials > logins.length, `dials ${dials}: some found nothing listening`)
    } finally {
      for (const socket of logins) socket.destroy()
      if (dials >= 2) await listening
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  })
})
