import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { HEADS_SUBJECTS, RELAY_STOP_GRACE_MS } from '@eventplane/bus-nats'
import { type RequestGate, type TestNatsServer, startNatsServer, startRequestGate } from '@eventplane/bus-nats/testing'
import { EventFactory } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { killAll, startCli } from './helpers.ts'

/** The relay's default stopDrainMs: the heads round in flight is abandoned then. */
const STOP_DRAIN_MS = 2000

/**
 * `evtctl relay --heads-every-ms` on SIGTERM while NATS holds the ack of a heads publish (a stalled server,
 * held by a proxy here): the heads round in flight is abandoned at the relay's stop deadline, so the process
 * exits 0 within the relay's bound. Before, the stop waited for the publish's own timeout (5 s) first, and the
 * round's failure was logged as a warning on the way out.
 */
describe('evtctl relay --heads-every-ms stopped while a heads publish is held', () => {
  let db: TestDatabase
  let nats: TestNatsServer
  let gate: RequestGate

  before(async () => {
    db = await createTestDatabase('ep_cli_heads_stop')
    const f = EventFactory.forTenant('acme', { causedBy: 'user:test' })
    const s = { tenant: 'acme', category: 'deployment', id: 'web' }
    await new PgEventStore(db.connect(ROLES.intentWriter, 1)).append(s, [f.intent(s, 'scaled', { replicas: 1 })])
    nats = await startNatsServer({ tenants: ['acme'] })
    gate = await startRequestGate(nats.port, HEADS_SUBJECTS.replace('>', ''))
  })
  after(async () => {
    killAll()
    await gate?.close()
    await nats?.stop()
    await db?.drop()
  })

  test('SIGTERM: exit 0 within the relay bound, the round abandoned with one warning, no failure logged', async () => {
    const url = new URL(db.url)
    url.username = ROLES.relay
    const relay = startCli(['relay', '--json', '--heads-every-ms', '1000'], {
      env: {
        EVENTPLANE_DATABASE_URL: url.toString(),
        EVENTPLANE_NATS_URL: gate.url,
        EVENTPLANE_NATS_CREDS: nats.credentials.relay!.creds,
      },
      timeoutMs: 120_000,
    })
    await relay.waitFor((out) => out.includes('"ready":true'), 90_000)
    assert.equal(await gate.held, 'eventplane-heads.acme')
    const signalled = performance.now()
    relay.child.kill('SIGTERM')
    const r = await relay.done(15_000)
    const tookMs = Math.round(performance.now() - signalled)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /"stopped":true/)
    assert.ok(gate.holding, 'the ack was held throughout')
    const warnings = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: number; msg: string; event?: string })
      .filter((l) => l.level >= 40)
      .map((w) => w.event ?? w.msg)
    assert.deepEqual(
      warnings.filter((w) => w.includes('heads')),
      ['relay.heads_unsigned', 'relay.heads_abandoned'],
      'the round abandoned, its cut publish not logged as a failure',
    )
    // The relay's bound, plus up to 1 s closing the PostgreSQL pools (docs/deploying.md).
    assert.ok(tookMs < STOP_DRAIN_MS + RELAY_STOP_GRACE_MS + 1000, `exited ${tookMs} ms after SIGTERM`)
    console.log(`# exited ${tookMs} ms after SIGTERM`)
  })
})
