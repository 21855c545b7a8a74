/**
 * Attack review 2026-12-02: what a tenant account reaches of the server's own `$SYS` subjects. nats-server gives
 * every account a few system imports scoped to that account (its connections and statistics); everything
 * server-wide, another account's and the claims API must not answer. Driven by a user with no grants at all in
 * acme's account, so the account boundary alone is what holds.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { RequestError } from '@nats-io/transport-node'
import type { NatsConnection } from '@nats-io/transport-node'
import { listTenants, loadAuthDir } from '../src/nats-config/index.ts'
import { type TestNatsServer, startNatsServer } from '../src/testing/index.ts'

describe('a tenant sees only its own account through the server’s system subjects', () => {
  let server: TestNatsServer
  const conns: NatsConnection[] = []

  before(async () => {
    server = await startNatsServer({ tenants: ['acme', 'globex'] })
  })
  after(async () => {
    for (const nc of conns) await nc.close().catch(() => {})
    await server?.stop()
  })

  test('connections and statistics answered to acme name acme’s account only; server-wide subjects, another account’s and the claims API have no responders', async () => {
    const accounts = new Map(listTenants(loadAuthDir(server.authDir!)).map((r) => [r.tenant, r.account]))
    const acmeAccount = accounts.get('acme')!
    const globexAccount = accounts.get('globex')!
    conns.push(await server.connect('globex', { name: 'globex-secret-client' }))
    conns.push(await server.connect('operator', { name: 'operator-secret-client' }))
    const acme = await server.connectAccountUser('acme', { name: 'acme-probe' })
    conns.push(acme)

    for (const subject of [
      '$SYS.REQ.ACCOUNT.PING.CONNZ',
      '$SYS.REQ.SERVER.PING.CONNZ',
      '$SYS.REQ.ACCOUNT.PING.STATZ',
    ]) {
      const msg = await acme.request(subject, '{"subscriptions":true,"auth":true}', { timeout: 5000 })
      const text = msg.string()
      const data = (msg.json() as { data: Record<string, unknown> }).data
      const named = [
        ...((data.connections as { account: string }[] | undefined) ?? []).map((c) => c.account),
        ...((data.account_statz as { acc: string }[] | undefined) ?? []).map((a) => a.acc),
      ]
      assert.ok(named.length > 0, `${subject} answered about acme`)
      assert.deepEqual([...new Set(named)], [acmeAccount], `${subject}: acme's account only`)
      for (const secret of ['globex-secret-client', 'operator-secret-client', globexAccount])
        assert.ok(!text.includes(secret), `${subject} does not name ${secret}`)
    }

    const refused = [
      `$SYS.REQ.ACCOUNT.${globexAccount}.CONNZ`,
      `$SYS.REQ.ACCOUNT.${globexAccount}.STATZ`,
      `$SYS.REQ.ACCOUNT.${globexAccount}.CLAIMS.LOOKUP`,
      '$SYS.REQ.SERVER.PING',
      '$SYS.REQ.SERVER.PING.STATZ',
      '$SYS.REQ.SERVER.PING.VARZ',
      '$SYS.REQ.SERVER.PING.ACCOUNTZ',
      '$SYS.REQ.SERVER.PING.JSZ',
      '$SYS.REQ.SERVER.PING.SUBSZ',
      '$SYS.REQ.CLAIMS.LIST',
      // A tenant cannot push an account JWT, not even a well-signed one it got hold of.
      '$SYS.REQ.CLAIMS.UPDATE',
      '$SYS.REQ.CLAIMS.DELETE',
    ]
    for (const subject of refused)
      await assert.rejects(
        acme.request(subject, '{}', { timeout: 2000 }),
        (e) => e instanceof RequestError && e.isNoResponders(),
        subject,
      )
  })
})
