import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { type AddressInfo, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { startNatsServer, type TestNatsServer } from '@eventplane/bus-nats/testing'
import { EventFactory } from '@eventplane/core'
import { PROJECTOR_ROLE } from '@eventplane/runtime'
import { PgEventStore, ROLES, logStatus } from '@eventplane/store-pg'
import { createTestDatabase, eventually, type TestDatabase } from '@eventplane/store-pg/testing'
import { type CliProcess, failureLine, killAll, pollCli, runCli, startCli } from './helpers.ts'

const DOMAIN = '@eventplane/example-deployments'
const FAILING_DOMAIN = fileURLToPath(new URL('./support/failing-projection-domain.ts', import.meta.url))
/** A password that must never show in a log line. */
const SECRET = 'hunter2-never-logged'

/** One service's JSON log lines (stderr, not a terminal). */
function logLines(stderr: string): Array<{ msg?: string; [key: string]: unknown }> {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg?: string })
}

describe('service commands: evtctl relay, gateway and run, each with its own credentials', () => {
  let db: TestDatabase
  let nats: TestNatsServer
  let dir: string
  const services = new Map<string, CliProcess>()
  /** The environment of one tier: its own PostgreSQL role URL (with a password) and NATS creds file. */
  const tier = (role: string, natsUser: string): Record<string, string> => {
    const url = new URL(db.url)
    url.username = role
    url.password = SECRET // the test server trusts local connections: any password is accepted
    return {
      EVENTPLANE_DATABASE_URL: url.toString(),
      EVENTPLANE_NATS_URL: nats.url,
      EVENTPLANE_NATS_CREDS: nats.credentials[natsUser]!.creds,
    }
  }
  /** The tenant acme publishing with its own creds (and an operator's admin URL for `state`). */
  const acme = () => ({
    EVENTPLANE_DATABASE_URL: db.url,
    EVENTPLANE_NATS_URL: nats.url,
    EVENTPLANE_NATS_CREDS: nats.credentials.acme!.creds,
  })

  before(async () => {
    db = await createTestDatabase('ep_cli_services')
    nats = await startNatsServer({ tenants: ['acme'] })
    dir = mkdtempSync(join(tmpdir(), 'evtctl-services-'))
    // Settings from a config file's sections, as a deployment would write them.
    writeFileSync(join(dir, 'relay.json'), JSON.stringify({ relay: { relayName: 'main', pollMs: 200 } }))
    services.set('relay', startCli(['relay', '--config', join(dir, 'relay.json')], { env: tier(ROLES.relay, 'relay') }))
    services.set(
      'gateway',
      startCli(['gateway', '--domain', DOMAIN], {
        env: { ...tier(ROLES.intentWriter, 'gateway'), EVENTPLANE_GATEWAY_RATE: '50' },
      }),
    )
    // The runner uses two roles: the configured URL names neither, each comes from its own variable.
    const runner = {
      EVENTPLANE_DATABASE_URL: db.url,
      EVENTPLANE_DATABASE_URL_PROJECTOR: tier(PROJECTOR_ROLE, 'controller').EVENTPLANE_DATABASE_URL!,
      EVENTPLANE_DATABASE_URL_FACT_WRITER: tier(ROLES.factWriter, 'controller').EVENTPLANE_DATABASE_URL!,
      EVENTPLANE_NATS_URL: nats.url,
      EVENTPLANE_NATS_CREDS: nats.credentials.controller!.creds,
      EVENTPLANE_DOMAIN: DOMAIN,
    }
    services.set('run', startCli(['run'], { env: runner }))
    await Promise.all([...services.values()].map((s) => s.waitFor((out) => out.startsWith('ready: '), 60_000)))
  })
  after(async () => {
    killAll()
    await nats?.stop()
    await db?.drop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('an intent goes gateway → log → relay → runner: reconciled, and visible in the projection', async () => {
    const bad = await runCli(
      ['publish', 'acme/deployment/web', 'create', '--data', '{"image":"x","replicas":"many"}'],
      {
        env: acme(),
      },
    )
    assert.equal(failureLine(bad).code, 'core.schema_violation', 'the gateway validates against the domain')
    const ok = await runCli(['publish', 'acme/deployment/web', 'create', '--data', '{"image":"web:1","replicas":2}'], {
      env: acme(),
    })
    assert.equal(ok.code, 0, ok.stderr)
    const state = ['state', 'deployment_status', '--tenant', 'acme', '--domain', DOMAIN, '--json']
    for (let deadline = Date.now() + 60_000; ; await sleep(200)) {
      if (Date.now() > deadline)
        throw new Error(
          `web never reached status running; the runner said: ${services.get('run')!.stderr.slice(-1500)}`,
        )
      // Polled in this process (pollCli), then asserted from the evtctl process.
      const r = await pollCli(state, { env: acme() })
      const row = r.stdout === '' ? undefined : (JSON.parse(r.stdout) as { state: { status: string } })
      if (row?.state.status === 'running') break
    }
    const r = await runCli(state, { env: acme() })
    assert.equal((JSON.parse(r.stdout) as { state: { status: string } }).state.status, 'running', r.stderr)
  })

  test('no service logs a password; each logs where it connects, redacted', async () => {
    for (const [name, service] of services) {
      assert.ok(!service.stderr.includes(SECRET), `${name} logged the password`)
      assert.ok(!service.stdout.includes(SECRET), `${name} printed the password`)
    }
    const relayStart = logLines(services.get('relay')!.stderr).find((l) => l.msg === 'relay process starting')
    assert.deepEqual(relayStart?.database, {
      [ROLES.relay]: tier(ROLES.relay, 'relay').EVENTPLANE_DATABASE_URL!.replace(SECRET, '***'),
    })
    assert.equal((relayStart!.settings as Record<string, string>).relayName, 'file')
    // The name is the relay's own, not only a setting echoed (mutation audit 2026-12-02, mutrand): its lease is "main".
    const active = () => logLines(services.get('relay')!.stderr).find((l) => l.msg === 'relay active')
    await eventually(() => active() !== undefined, 60_000, 'the relay active')
    assert.equal(active()!.relay, 'main')
    const gatewayStart = logLines(services.get('gateway')!.stderr).find((l) => l.msg === 'gateway process starting')
    assert.match(JSON.stringify(gatewayStart?.database), /:\*\*\*@/)
    const runStart = logLines(services.get('run')!.stderr).find((l) => l.msg === 'runner process starting')
    assert.match(JSON.stringify(runStart?.database), /eventplane_projector:\*\*\*@.*eventplane_fact_writer:\*\*\*@/)
  })

  test('a wrong NATS password (from EVENTPLANE_NATS_PASSWORD_FILE) is one typed line, exit 4, no stack trace', async () => {
    const passwordFile = join(dir, 'nats-password')
    writeFileSync(passwordFile, 'not-the-password\n', { mode: 0o600 })
    const { EVENTPLANE_NATS_CREDS: _, ...env } = tier(ROLES.relay, 'relay')
    for (const command of [['relay'], ['gateway', '--domain', DOMAIN], ['run', '--domain', DOMAIN]]) {
      const r = await runCli(command, {
        env: { ...env, EVENTPLANE_NATS_USER: 'relay', EVENTPLANE_NATS_PASSWORD_FILE: passwordFile },
      })
      assert.equal(r.code, 4, `${command[0]}: ${r.stderr}`)
      const lines = r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'))
      assert.equal(lines.length, 1, `${command[0]}: ${r.stderr}`)
      assert.match(lines[0]!, /^evtctl: bus\.auth_failed: /)
      assert.ok(!r.stderr.includes('not-the-password') && !/\n\s+at /.test(r.stderr), r.stderr)
    }
  })

  test('a bad setting stops a service at startup with one cli.config line naming where it came from', async () => {
    const keyFile = (type: 'ed25519' | 'x25519'): string => {
      const file = join(dir, `${type}.pem`)
      const { privateKey } = type === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('x25519')
      writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }))
      return file
    }
    writeFileSync(join(dir, 'typo.json'), JSON.stringify({ gateway: { rates: 5 } }))
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['relay', '--batch-size', 'lots'], {}, /^--batch-size must be an integer/],
      [
        ['relay'],
        { EVENTPLANE_RELAY_TERMINATE_STUCK: 'maybe' },
        /^EVENTPLANE_RELAY_TERMINATE_STUCK must be true or false/,
      ],
      [
        ['gateway', '--domain', DOMAIN, '--config', join(dir, 'typo.json')],
        {},
        /unknown gateway setting "rates" \(did you mean "rate"\?\)/,
      ],
      [
        ['gateway', '--domain', DOMAIN],
        { EVENTPLANE_GATEWAY_TENANT_LIMITS: '{"acme":{"burst":0}}' },
        /gateway limits: /,
      ],
      [['gateway', '--domain', DOMAIN, '--rate', '0'], {}, /^--rate must be a positive number or unlimited/],
      [['relay', '--log-level', 'warn'], { EVENTPLANE_OPS_PORT: 'eighty' }, /EVENTPLANE_OPS_PORT/],
      // A heads key is read and checked before anything connects: needed only with heads, and an Ed25519 one.
      [
        ['relay', '--log-level', 'warn', '--heads-sign-key', keyFile('ed25519')],
        {},
        /^--heads-sign-key needs --heads-every-ms/,
      ],
      [
        ['relay', '--log-level', 'warn', '--heads-every-ms', '1000', '--heads-sign-key', keyFile('x25519')],
        {},
        /^the heads signing key \S+ is not an Ed25519 private key$/,
      ],
    ]
    for (const [args, extra, message] of cases) {
      const r = await runCli(args, { env: { ...tier(ROLES.relay, 'relay'), ...extra } })
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`)
      const failure = failureLine(r)
      assert.equal(failure.code, 'cli.config')
      assert.match(failure.message, message)
    }
  })

  test('evtctl run started before PostgreSQL answers waits for it, and SIGTERM meanwhile stops it: exit 0', async () => {
    // docs/deploying.md: processes wait for PostgreSQL at startup, in any order; nothing listens on this port.
    const probe = createServer()
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
    const { port } = probe.address() as AddressInfo
    await new Promise<void>((resolve) => probe.close(() => resolve()))
    const down = `postgres://postgres@127.0.0.1:${port}/nowhere`
    const early = startCli(['run'], {
      env: {
        EVENTPLANE_DATABASE_URL: down,
        EVENTPLANE_NATS_URL: nats.url,
        EVENTPLANE_NATS_CREDS: nats.credentials.controller!.creds,
        EVENTPLANE_DOMAIN: DOMAIN,
      },
    })
    await early.waitFor((err) => err.includes('projection resyncing from PostgreSQL'), 60_000, 'stderr')
    early.child.kill('SIGTERM')
    const r = await early.done(30_000)
    assert.equal(r.code, 0, r.stderr.slice(-2000))
    assert.doesNotMatch(r.stdout, /^ready: /m, 'no ready line: it never served')
    assert.match(r.stdout, /^stopped$/m)
  })

  test("evtctl run and replay whose projection fails on an event exit with that failure's own line", async () => {
    const s = { tenant: 'acme', category: 'deployment', id: 'fails' }
    const f = EventFactory.forTenant('acme', { causedBy: 'user:test' })
    await new PgEventStore(db.connect(ROLES.intentWriter, 1)).append(s, [f.intent(s, 'created', {})])
    // The gap-safe read waits for older transactions anywhere in the cluster: the run's catch-up must see it.
    await eventually(async () => (await logStatus(db.admin)).waiting === 0, 120_000, 'the event readable')
    const r = await runCli(['run', '--log-level', 'warn'], {
      env: {
        EVENTPLANE_DATABASE_URL: tier(PROJECTOR_ROLE, 'controller').EVENTPLANE_DATABASE_URL!,
        EVENTPLANE_NATS_URL: nats.url,
        EVENTPLANE_NATS_CREDS: nats.credentials.controller!.creds,
        EVENTPLANE_DOMAIN: FAILING_DOMAIN,
      },
      timeoutMs: 60_000,
    })
    assert.equal(r.code, 70, r.stderr)
    const failure = failureLine(r)
    assert.equal(failure.code, 'runtime.handler_failed')
    assert.match(failure.message, /^projection failing_projection failed on event /)
    // So does its replay: a failure, not an interruption to resume.
    const replay = await runCli(['replay', 'failing_projection', '--log-level', 'warn'], {
      env: {
        EVENTPLANE_DATABASE_URL: tier(PROJECTOR_ROLE, 'controller').EVENTPLANE_DATABASE_URL!,
        EVENTPLANE_DOMAIN: FAILING_DOMAIN,
      },
    })
    assert.equal(replay.code, 70, replay.stderr)
    assert.equal(failureLine(replay).code, 'runtime.handler_failed')
  })

  test('SIGTERM stops each service cleanly: exit 0 and a stopped line', async () => {
    for (const [name, service] of services) {
      service.child.kill('SIGTERM')
      const r = await service.done(30_000)
      assert.equal(r.code, 0, `${name}: ${r.stderr}`)
      assert.match(r.stdout, /^stopped$/m, name)
    }
  })
})
