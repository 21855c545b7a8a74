import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { GATEWAY_APPLICATION_NAME } from '@eventplane/bus-nats'
import { ROLES } from '@eventplane/store-pg'
import { EventFactory } from '@eventplane/core'
import { holdStream } from '@eventplane/store-pg/testing'
import { eventually, within } from '../../packages/bus-nats/test/fixtures.ts'
import { assertNothingLostOrDoubled } from './support/checks.ts'
import { Ledger, startIntentLoad, submitUntilAcked } from './support/clients.ts'
import { useFaultSystem } from './support/system.ts'

describe('faults: PostgreSQL connections terminated under load', () => {
  const sys = useFaultSystem('ep_fault_pgterm')

  test('when the gateway and relay sessions are terminated under load, clients get store.unavailable, retry with the same ids, and nothing is lost or doubled', {
    timeout: 60_000,
  }, async (t) => {
    const { env } = sys
    const relay = sys.spawn('relay', { EVENTPLANE_RELAY_NAME: 'main' })
    const gateway = sys.spawn('gateway')
    await Promise.all([relay.waitForLog('relay active'), gateway.waitForLog('gateway serving')])
    const runner = await sys.projection('proj_fault_pgterm')
    await runner.start()

    const clients = await Promise.all(
      ['acme', 'acme', 'acme', 'acme', 'globex', 'globex', 'globex', 'globex'].map(async (tenant) => ({
        tenant,
        nc: await sys.client(tenant),
      })),
    )
    const load = startIntentLoad({ clients, eventsPerClient: 120, streams: 3, timeoutMs: 2000, deadlineMs: 40_000 })
    sys.defer(async () => load.stop())
    let finished = false
    void load.done.finally(() => (finished = true)).catch(() => {})

    // One append certainly in a running query when its session ends (whatever the timing of the rounds
    // below): the test holds its stream's next version, so the gateway's append waits in PostgreSQL, and
    // ends that backend there. postgres.js fails the query as CONNECTION_CLOSED; the client must get
    // store.unavailable (a bus.internal would end submitUntilAcked).
    const held = { tenant: 'acme', category: 'deployment', id: 'held' }
    const heldEvent = EventFactory.forTenant('acme', { causedBy: 'user:held' }).intent(held, 'scaled', { held: true })
    const hold = await holdStream(sys.admin, held)
    sys.defer(() => hold.release())
    const heldLedger = new Ledger()
    const heldAck = submitUntilAcked(await sys.client('acme'), heldEvent, heldLedger, {
      deadline: Date.now() + 40_000,
      timeoutMs: 10_000,
    })
    heldAck.catch(() => {})
    let waiting: number | undefined
    await eventually(async () => {
      const [row] = await sys.admin<{ pid: number }[]>`select pid from pg_stat_activity
        where datname = ${env.db.name} and application_name = ${GATEWAY_APPLICATION_NAME}
          and ${hold.pid}::int = any(pg_blocking_pids(pid))`
      waiting = row?.pid
      return waiting !== undefined
    }, 'the gateway to wait for the held stream')
    await sys.admin`select pg_terminate_backend(${waiting!}::int)`
    await hold.release()

    // Every 50 ms, for at most 4 s while the load runs: end the established sessions of the gateway
    // (by application name) and the relay (by role), in this database only. Spared: sessions younger
    // than 500 ms, because postgres.js 3.4.9 mishandles a connection ended while it opens (its
    // fetch_types query: an unhandled rejection, porsager/postgres#1192, and a sparse result for
    // the next query, #1181); and the projector's, which runs in this process, where the driver can
    // throw an uncaught TypeError from sql.begin or hang a commit after a termination.
    let rounds = 0
    let terminated = 0
    for (const until = Date.now() + 4000; !finished && Date.now() < until; rounds++) {
      const [row] = await sys.admin<{ n: number }[]>`
        select count(*) filter (where pg_terminate_backend(pid))::int as n from pg_stat_activity
         where datname = ${env.db.name} and pid <> pg_backend_pid()
           and backend_start < clock_timestamp() - interval '500 milliseconds'
           and (application_name = ${GATEWAY_APPLICATION_NAME} or usename = ${ROLES.relay})`
      terminated += row!.n
      await sleep(50)
    }
    await within(load.done, 40_000, 'the clients to finish')
    const heldResult = await within(heldAck, 40_000, 'the held append to be acknowledged')

    const { ledger } = load
    // Its retry may meet a round below too, or the tenant's rate limit: both retryable as well.
    assert.ok(
      heldLedger.count('store.unavailable') >= 1,
      `the append whose session ended mid-query was answered store.unavailable, then acknowledged on retry (errors: ${heldLedger.summary()})`,
    )
    ledger.acked.set(heldEvent.event_id, heldResult)
    assert.ok(terminated > 0, 'sessions were terminated')
    for (const child of [relay, gateway])
      assert.equal(child.process.exitCode, null, `the ${child.kind} process survived`)
    assert.ok(
      ledger.count('store.unavailable') >= 1,
      `the gateway answered store.unavailable (errors: ${ledger.summary()})`,
    )
    assert.equal(ledger.count('unexpected'), 0, 'every failure was a typed error')
    await assertNothingLostOrDoubled(sys, { runner, ledger, submitted: load.total + 1 })
    t.diagnostic(
      `acked ${ledger.acked.size} (${ledger.retried} after a retry); ${terminated} sessions terminated in ${rounds} rounds; failed attempts: ${ledger.summary()}`,
    )
  })
})
