/**
 * Tenants come and go live (issue 10): `evtctl tenant add` and `evtctl tenant
 * revoke` push account JWTs to the running nats-server. Another tenant
 * publishing and consuming at a steady rate meanwhile loses nothing and sees
 * no error; the revoked tenant's live connection is closed and its creds are
 * refused from then on; the added tenant works at once.
 */
import assert from 'node:assert/strict'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { EventFactory } from '@eventplane/core'
import { type Gateway, Relay, startGateway, submitIntent } from '@eventplane/bus-nats'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { connect, credsAuthenticator } from '@nats-io/transport-node'
import { type BusEnv, createBusEnv, eventually, within } from '../../packages/bus-nats/test/fixtures.ts'
import { failureLine, killAll, runCli } from '../../packages/evtctl/test/helpers.ts'
import { SteadyTenant } from './support/steady-tenant.ts'

describe('tenants are added and revoked live, without disturbing another tenant', () => {
  let env: BusEnv
  let gateway: Gateway
  let relay: Relay

  before(async () => {
    env = await createBusEnv('ep_lifecycle', ['globex', 'acme'])
    gateway = await startGateway({
      nc: await env.natsAs('gateway'),
      store: new PgEventStore(env.db.connect(ROLES.intentWriter, 4)),
    })
    relay = new Relay({ sql: env.db.connect(ROLES.relay, 2), nc: await env.natsAs('relay'), name: 'life' })
    relay.start()
  })
  after(async () => {
    killAll()
    await relay?.stop()
    await gateway?.stop()
    await env?.cleanup()
  })

  test('tenant add and tenant revoke while globex publishes and consumes: globex loses nothing and sees no error', async () => {
    const cli = { EVENTPLANE_NATS_URL: env.server.url, EVENTPLANE_NATS_AUTH_DIR: env.server.authDir! }
    const globex = new SteadyTenant(await env.server.connect('globex'), 'globex')
    await globex.start()
    try {
      const acmeCreds = readFileSync(env.server.credentials.acme!.creds)
      const acme = await env.server.connect('acme', { maxReconnectAttempts: 5, reconnectTimeWait: 100 })
      await eventually(() => globex.submitted.length >= 20, 'globex to get going')

      const added = await runCli(['tenant', 'add', 'initech', '--json'], { env: cli })
      assert.equal(added.code, 0, added.stderr)
      const { creds_file: credsFile, consumers } = JSON.parse(added.stdout) as {
        creds_file: string
        consumers: string[]
      }
      assert.deepEqual(consumers, ['initech_tail', 'initech_proj', 'initech_ctl'])
      assert.equal(statSync(credsFile).mode & 0o777, 0o600, 'the creds file is private')
      const secrets = readFileSync(credsFile, 'utf8')
        .split('\n')
        .filter((l) => /^(eyJ|SU)/.test(l))
      assert.equal(secrets.length, 2)
      assert.ok(!secrets.some((s) => added.stdout.includes(s) || added.stderr.includes(s)), 'creds are never printed')
      const initech = await connect({
        servers: env.server.url,
        authenticator: credsAuthenticator(readFileSync(credsFile)),
        inboxPrefix: '_INBOX_initech',
      })
      const intent = EventFactory.forTenant('initech', { causedBy: 'user:new' }).intent(
        { category: 'deployment', id: 'first' },
        'scaled',
        { n: 1 },
      )
      assert.equal((await submitIntent(initech, intent)).event_id, intent.event_id, 'the new tenant works at once')
      await initech.close()

      const closed = acme.closed()
      const revoked = await runCli(['tenant', 'revoke', 'acme', '--json'], { env: cli })
      assert.equal(revoked.code, 0, revoked.stderr)
      assert.equal((JSON.parse(revoked.stdout) as { status: string }).status, 'revoked')
      const why = await within(closed, 15_000, "acme's connection to be closed")
      assert.ok(why instanceof Error, `closed by the server: ${String(why)}`)
      await assert.rejects(
        connect({ servers: env.server.url, authenticator: credsAuthenticator(acmeCreds), maxReconnectAttempts: 0 }),
        (e: Error) => /Authorization|Authentication|revoked/i.test(e.message),
        'the revoked creds are refused',
      )

      const atRevoke = globex.submitted.length
      await eventually(() => globex.submitted.length >= atRevoke + 20, 'globex to go on after the revoke')
      await globex.assertUndisturbed()
      const list = await runCli(['tenant', 'list', '--json'], { env: cli })
      const statuses = list.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { tenant: string; status: string })
        .map((r) => `${r.tenant}:${r.status}`)
      assert.deepEqual(statuses, ['acme:revoked', 'globex:active', 'initech:active'])
    } finally {
      // A failed assertion must not leave globex submitting (and the file's process alive) until the timeout.
      await globex.close()
    }
  })

  test("tenant add refuses a consumer that is not the tenant's own (a controller's, another tenant's): exit 1, core.invalid_name, nothing added; revoking an unknown tenant is exit 1, bus.unknown_tenant", async () => {
    const cli = { EVENTPLANE_NATS_URL: env.server.url, EVENTPLANE_NATS_AUTH_DIR: env.server.authDir! }
    // ctl_… is the runtime's controller consumer (its filter spans tenants); globex_tail is globex's.
    for (const consumer of ['ctl_orders', 'globex_tail']) {
      const r = await runCli(['tenant', 'add', 'hooli', '--consumer', consumer], { env: cli })
      assert.equal(r.code, 1, `${consumer}: ${r.stderr}`)
      const failure = failureLine(r)
      assert.equal(failure.code, 'core.invalid_name', consumer)
      assert.match(failure.message, /must be named hooli_<name>/)
    }
    assert.equal(existsSync(join(env.server.authDir!, 'tenants', 'hooli.json')), false, 'no tenant record written')
    assert.equal(existsSync(join(env.server.authDir!, 'tenants', 'hooli.nk')), false, 'no account key made')
    const unknown = await runCli(['tenant', 'revoke', 'nobody'], { env: cli })
    assert.equal(unknown.code, 1, unknown.stderr)
    assert.equal(failureLine(unknown).code, 'bus.unknown_tenant')
  })

  test('a revoked tenant is added again only with --readmit (attack review 2026-12-02): exit 1, bus.bad_request, nothing made without it', async () => {
    const cli = { EVENTPLANE_NATS_URL: env.server.url, EVENTPLANE_NATS_AUTH_DIR: env.server.authDir! }
    // acme was revoked by the first test; its events stay under its name, and a new account of it would read them.
    const refused = await runCli(['tenant', 'add', 'acme'], { env: cli })
    assert.equal(refused.code, 1, refused.stderr)
    const failure = failureLine(refused)
    assert.equal(failure.code, 'bus.bad_request')
    assert.match(failure.message, /: tenant acme was revoked at .*--readmit\)$/)
    assert.equal(existsSync(join(env.server.authDir!, 'tenants', 'acme.creds')), false, 'no creds written')
    const readmitted = await runCli(['tenant', 'add', 'acme', '--readmit', '--json'], { env: cli })
    assert.equal(readmitted.code, 0, readmitted.stderr)
    assert.deepEqual(
      (({ status, created }) => ({ status, created }))(
        JSON.parse(readmitted.stdout) as { status: string; created: boolean },
      ),
      { status: 'active', created: true },
    )
  })
})
