import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventFactory } from '@eventplane/core'
import { GATEWAY_APPLICATION_NAME, tenantInboxPrefix } from '@eventplane/bus-nats'
import { startNatsServer, type TestNatsServer } from '@eventplane/bus-nats/testing'
import { ROLES } from '@eventplane/store-pg'
import { createTestDatabase, holdStream, type TestDatabase } from '@eventplane/store-pg/testing'
import { type ServiceProcess, eventually, within } from '../../packages/bus-nats/test/fixtures.ts'
import { assertAckedOnce, assertVersionsContiguous, logRows } from './support/checks.ts'
import { FAULT_DOMAIN, spawnEvtctlService } from './support/children.ts'
import { Ledger, startIntentLoad, submitUntilAcked } from './support/clients.ts'
import { type ReplyGate, startReplyGate } from './support/reply-gate.ts'

describe('faults: two gateways in one queue group, one killed with SIGKILL under load', () => {
  let db: TestDatabase
  let nats: TestNatsServer
  let gate: ReplyGate | undefined
  const gateways: ServiceProcess[] = []
  const spawnGateway = (label: string, url = nats.url): ServiceProcess => {
    const gateway = spawnEvtctlService('gateway', label, {
      EVENTPLANE_DATABASE_URL: db.roleUrl(ROLES.intentWriter),
      EVENTPLANE_NATS_URL: url,
      EVENTPLANE_DOMAIN: FAULT_DOMAIN,
      EVENTPLANE_LOG_LEVEL: 'debug', // one 'intent recorded' line per append it answered
    })
    gateways.push(gateway)
    return gateway
  }
  const recorded = (gateway: ServiceProcess): number => gateway.logs.filter((l) => l.msg === 'intent recorded').length

  before(async () => {
    db = await createTestDatabase('ep_fault_gw_pair')
    nats = await startNatsServer({ withAuth: false })
  })
  after(async () => {
    await Promise.allSettled(gateways.map((g) => g.kill()))
    await gate?.close()
    await nats?.stop()
    await db?.drop()
  })

  test('the surviving gateway serves every retry: each acknowledged intent is stored once, none is lost', {
    timeout: 90_000,
  }, async (t) => {
    const reconnecting = { maxReconnectAttempts: -1, reconnectTimeWait: 100 }
    // A reaches NATS through a gate that, once armed, holds A's replies and everything A sends after them
    // (nothing A does before the kill sends a PING, which would pass them on): what A appends from then on is
    // committed but never answered, so its clients retry through B, which must answer each from the stored row.
    gate = await startReplyGate(nats.port)
    const a = spawnGateway('gateway A', gate.url)
    await a.waitForLog('gateway serving')
    const acmeClient = () => nats.connect(undefined, { ...reconnecting, inboxPrefix: tenantInboxPrefix('acme') })

    // One intent A certainly stored and never answered: A alone appends it (B is not started yet), its reply is
    // held, and every retry of it goes to A until B serves.
    gate.arm()
    const unanswered = { tenant: 'acme', category: 'deployment', id: 'unanswered' }
    const unansweredEvent = EventFactory.forTenant('acme', { causedBy: 'user:unanswered' }).intent(
      unanswered,
      'scaled',
      { unanswered: true },
    )
    const unansweredLedger = new Ledger()
    const unansweredAck = submitUntilAcked(await acmeClient(), unansweredEvent, unansweredLedger, {
      deadline: Date.now() + 60_000,
      timeoutMs: 1000,
    })
    unansweredAck.catch(() => {})
    await eventually(
      async () =>
        (await db.admin`select 1 from eventplane.events where event_id = ${unansweredEvent.event_id}`).length > 0,
      'A to store the intent whose reply the gate holds',
    )

    // One request certainly in flight at A when it dies: while A serves alone, its append waits
    // for a stream lock the test holds, and stays waiting until after the kill.
    const held = { tenant: 'acme', category: 'deployment', id: 'held' }
    const heldEvent = EventFactory.forTenant('acme', { causedBy: 'user:held' }).intent(held, 'scaled', { held: true })
    // holdStream inserts the stream's next version in a transaction it keeps open: an append to the
    // stream waits on the unique version index until it is released (rolled back).
    const lock = await holdStream(db.admin, held)
    const holder = lock.pid
    const ledger = new Ledger()
    let heldAck: Promise<unknown> | undefined
    try {
      heldAck = submitUntilAcked(await acmeClient(), heldEvent, ledger, {
        deadline: Date.now() + 60_000,
        timeoutMs: 1000,
      })
      heldAck.catch(() => {})
      await eventually(async () => {
        const waiting = await db.admin`select 1 from pg_stat_activity where datname = ${db.name}
          and application_name = ${GATEWAY_APPLICATION_NAME} and ${holder}::int = any(pg_blocking_pids(pid))`
        return waiting.length > 0
      }, "gateway A's append to wait for the held stream lock")

      const b = spawnGateway('gateway B')
      await b.waitForLog('gateway serving')
      const recordedByA = recorded(a)
      const clients = await Promise.all(
        ['acme', 'acme', 'globex', 'globex'].map(async (tenant) => ({
          tenant,
          nc: await nats.connect(undefined, { ...reconnecting, inboxPrefix: tenantInboxPrefix(tenant) }),
        })),
      )
      const load = startIntentLoad({ clients, eventsPerClient: 40, streams: 3, timeoutMs: 1000, deadlineMs: 60_000 })
      try {
        // Each request the queue group gives A goes unanswered (the gate) and is retried after its 1 s timeout,
        // so the clients make slow progress: wait for both to have appended some of the load, with time for a
        // loaded machine.
        await eventually(
          () => load.ledger.acked.size >= 10 && recorded(a) > recordedByA && recorded(b) > 0,
          'both gateways to answer the load',
          60_000,
        ).catch((e: unknown) => {
          throw new Error(`${String(e)}; failed attempts: ${load.ledger.summary()}`, { cause: e })
        })
        await a.kill('SIGKILL')
        const ackedAtKill = load.ledger.acked.size
        const recordedByB = recorded(b)
        await lock.release()
        await within(Promise.all([load.done, heldAck, unansweredAck]), 60_000, 'the clients to be acknowledged')
        assert.ok(load.ledger.acked.size > ackedAtKill && recorded(b) > recordedByB, 'B went on serving alone')

        const rows = await logRows(db.admin)
        assert.equal(rows.length, load.total + 2, 'PostgreSQL holds every submitted intent and nothing else')
        assertAckedOnce(rows, load.ledger)
        assertAckedOnce(rows, ledger)
        assertAckedOnce(rows, unansweredLedger)
        assertVersionsContiguous(rows)
        assert.ok(ledger.timedOut.has(heldEvent.event_id), 'the request held at A timed out and was retried')
        assert.ok(unansweredLedger.timedOut.has(unansweredEvent.event_id), 'the unanswered request was retried')
        t.diagnostic(
          `A answered ${recorded(a)}, B ${recorded(b)}; ${load.ledger.acked.size - ackedAtKill} acks after the kill; ` +
            `failed attempts: ${load.ledger.summary()}, held request: ${ledger.summary()}, ` +
            `unanswered request: ${unansweredLedger.summary()}`,
        )
      } finally {
        load.stop()
      }
    } finally {
      await lock.release().catch(() => {})
    }
  })
})
