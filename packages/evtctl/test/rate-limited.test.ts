import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type Gateway, startGateway } from '@eventplane/bus-nats'
import { startNatsServer, type TestNatsServer } from '@eventplane/bus-nats/testing'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { EXIT } from '../src/exit-codes.ts'
import { failureLine, runCli } from './helpers.ts'

describe('evtctl publish against a gateway that refuses for now', () => {
  let db: TestDatabase
  let nats: TestNatsServer
  let gateway: Gateway

  before(async () => {
    db = await createTestDatabase('ep_cli_rate')
    nats = await startNatsServer({ tenants: ['acme'] })
    gateway = await startGateway({
      nc: await nats.connect('gateway'),
      store: new PgEventStore(db.connect(ROLES.intentWriter, 2)),
      // One request, then nothing for a very long time; refusals answered at once.
      limits: { perTenant: { ratePerSecond: 0.001, burst: 1 }, refusalHoldMs: 0 },
    })
  })
  after(async () => {
    await gateway?.stop()
    await nats?.stop()
    await db?.drop()
  })

  test('a publish over the tenant’s rate exits 3 with one bus.rate_limited line and writes nothing', async () => {
    const env = { EVENTPLANE_NATS_URL: nats.url, EVENTPLANE_NATS_CREDS: nats.credentials.acme!.creds }
    const publish = () => runCli(['publish', 'acme/deployment/web', 'create', '--data', '{}'], { env })
    const first = await publish()
    assert.equal(first.code, EXIT.ok, first.stderr)
    const second = await publish()
    assert.equal(second.code, EXIT.unavailable, second.stderr)
    assert.equal(failureLine(second).code, 'bus.rate_limited')
    const [row] = await db.admin<{ n: number }[]>`select count(*)::int as n from eventplane.events`
    assert.equal(row!.n, 1, 'only the first publish was recorded')
  })
})
