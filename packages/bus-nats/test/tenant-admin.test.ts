/**
 * Tenant administration at the account boundary (mutation audit 2026-11-30, NATS boundary): what `addTenant`
 * and `revokeTenant` leave behind on the server (consumers, imports, creds), against a real nats-server.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream'
import { JS_API, isJsApiError } from '../src/nats-errors.ts'
import { SYSTEM_USER } from '../src/nats-config/claims.ts'
import { listTenants, loadAuthDir } from '../src/nats-config/index.ts'
import { STREAM_NAME, tenantInboxPrefix } from '../src/subjects.ts'
import { type TestNatsServer, startNatsServer } from '../src/testing/index.ts'

describe('tenant administration', () => {
  let server: TestNatsServer
  let operator: JetStreamManager

  before(async () => {
    server = await startNatsServer({ tenants: ['acme_x'] })
    operator = await jetstreamManager(await server.connect('operator'))
  })
  after(async () => {
    await server?.stop()
  })

  const consumerGone = (name: string) =>
    assert.rejects(operator.consumers.info(STREAM_NAME, name), (e) => isJsApiError(e, JS_API.consumerNotFound))
  /** Whether a connection may read consumer `name`'s info (the first thing a pull asks). */
  const readsConsumer = async (nc: Parameters<typeof jetstream>[0], name: string): Promise<boolean> =>
    jetstream(nc, { timeout: 1500 })
      .consumers.get(STREAM_NAME, name)
      .then(
        () => true,
        () => false,
      )

  test("a consumer another tenant owns is refused, even when its name starts with the tenant's (acme and acme_x)", async () => {
    // acme_x was added with its defaults: acme_x_tail, acme_x_proj, acme_x_ctl. `acme_x_tail` starts with `acme_`.
    await assert.rejects(
      server.addTenant('acme', { consumers: ['acme_tail', 'acme_x_tail'] }),
      (e) => isEventplaneError(e, 'core.invalid_name') && /already belongs to tenant acme_x/.test(e.message),
    )
    assert.equal(
      listTenants(loadAuthDir(server.authDir!)).some((r) => r.tenant === 'acme'),
      false,
      'no record for acme',
    )
    const info = await operator.consumers.info(STREAM_NAME, 'acme_x_tail')
    assert.equal(info.config.filter_subject, 'eventplane.*.acme_x.>', "acme_x's consumer keeps its filter")
    // acme added properly: even a user of acme's account with no user grants cannot reach acme_x's consumer.
    await server.addTenant('acme')
    const acme = await server.connectAccountUser('acme')
    assert.equal(await readsConsumer(acme, 'acme_tail'), true, "acme's own consumer")
    assert.equal(await readsConsumer(acme, 'acme_x_tail'), false, "acme_x's consumer is not acme's")
  })

  test('a re-add with other consumers keeps the account, deletes the dropped consumers and re-issues the creds for the new set', async () => {
    const first = await server.addTenant('initech', { consumers: ['initech_tail', 'initech_proj'] })
    const before = await server.connect('initech')
    assert.equal(await readsConsumer(before, 'initech_proj'), true)
    const second = await server.addTenant('initech', { consumers: ['initech_tail', 'initech_audit'] })
    assert.equal(second.created, false)
    assert.equal(second.record.account, first.record.account, 'an active tenant keeps its account')
    await consumerGone('initech_proj')
    const after = await server.connect('initech', { inboxPrefix: tenantInboxPrefix('initech') })
    assert.equal(await readsConsumer(after, 'initech_audit'), true, 'the new consumer, with the new creds')
    assert.equal(await readsConsumer(after, 'initech_tail'), true)
  })

  test('revoking a tenant deletes its consumers and issues it no user; adding it again starts from new ones, under a new account', async () => {
    const first = await server.addTenant('hooli', { consumers: ['hooli_tail'] })
    await server.revokeTenant('hooli')
    await consumerGone('hooli_tail')
    await assert.rejects(server.connectAccountUser('hooli'), (e) => isEventplaneError(e, 'bus.unknown_tenant'))
    // A revoked name is added again only when asked (tenant-readmit.test.ts).
    const again = await server.addTenant('hooli', { consumers: ['hooli_tail'], readmit: true })
    assert.equal(again.created, true)
    assert.notEqual(again.record.account, first.record.account)
    const hooli = await server.connect('hooli')
    assert.equal(await readsConsumer(hooli, 'hooli_tail'), true, 'the new creds work')
  })

  test('a limit below 1 is refused with bus.config and adds nothing', async () => {
    for (const limits of [{ connections: 0 }, { subscriptions: 0 }, { payloadBytes: -1 }]) {
      await assert.rejects(server.addTenant('umbrella', { limits }), (e) => isEventplaneError(e, 'bus.config'))
      assert.equal(
        listTenants(loadAuthDir(server.authDir!)).some((r) => r.tenant === 'umbrella'),
        false,
        JSON.stringify(limits),
      )
    }
    await consumerGone('umbrella_tail')
  })

  test("the system account's user pushes account claims and nothing else: a server-wide request is refused", async () => {
    const system = await server.connect(SYSTEM_USER)
    // CONNZ of every server lists every account's connections: the operator's business, not the claims pusher's.
    await assert.rejects(system.request('$SYS.REQ.SERVER.PING.CONNZ', '', { timeout: 2000 }))
    await assert.rejects(system.request('$SYS.REQ.SERVER.PING', '', { timeout: 2000 }))
  })

  test("a re-add that fails on a consumer of another filter leaves the tenant's account as it was: it imports nothing new", async () => {
    await server.addTenant('vandelay', { consumers: ['vandelay_tail'] })
    // A consumer of that name made by hand on another tenant's subjects, listed in no tenant record.
    await operator.consumers.add(STREAM_NAME, { durable_name: 'vandelay_x', filter_subject: 'eventplane.*.acme_x.>' })
    await assert.rejects(server.addTenant('vandelay', { consumers: ['vandelay_tail', 'vandelay_x'] }), (e) =>
      isEventplaneError(e, 'bus.bad_request'),
    )
    const account = await server.connectAccountUser('vandelay')
    assert.equal(await readsConsumer(account, 'vandelay_tail'), true)
    assert.equal(await readsConsumer(account, 'vandelay_x'), false, "the account never imported acme_x's events")
  })

  test("a tenant named like the system side (a service user, system, proj, ctl, evtctl) is refused: its <tenant>_… consumers would be the runtime's or the operator's", async () => {
    // Literal names, not RESERVED_TENANT_NAMES: `proj_<projection>` and `ctl_<controller>` are the runtime's
    // consumers, whose filters span every tenant; a tenant `proj` could list one of them. `evtctl_tail` is the
    // one an operator's `evtctl subscribe` without a tenant opens as it finds it (attack review 2026-12-02).
    for (const tenant of ['operator', 'relay', 'gateway', 'controller', 'system', 'proj', 'ctl', 'evtctl']) {
      await assert.rejects(
        server.addTenant(tenant, { consumers: [`${tenant}_orders`] }),
        (e) => isEventplaneError(e, 'core.invalid_name') && /is reserved/.test(e.message),
        tenant,
      )
      assert.equal(
        listTenants(loadAuthDir(server.authDir!)).some((r) => r.tenant === tenant),
        false,
        tenant,
      )
      await consumerGone(`${tenant}_orders`)
    }
  })
})
