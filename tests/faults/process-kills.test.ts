import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { EventFactory } from '@eventplane/core'
import { GATEWAY_APPLICATION_NAME } from '@eventplane/bus-nats'
import { holdStream } from '@eventplane/store-pg/testing'
import { jetstreamManager } from '@nats-io/jetstream'
import { appendIntents, eventually, within } from '../../packages/bus-nats/test/fixtures.ts'
import { assertNothingLostOrDoubled, checkpointedCount } from './support/checks.ts'
import { startAckGate } from '@eventplane/bus-nats/testing'
import { killRelayMidBatch } from './support/mid-batch.ts'
import { startIntentLoad, submitUntilAcked } from './support/clients.ts'
import { useFaultSystem } from './support/system.ts'

const BACKLOG = 2000
/** Acks the first relay hears before the ack gate holds the rest: short of its first batch's end. */
const ACKED = 300
/** Batches of 500 with up to 500 publishes un-acked: a batch goes out whole before any of its acks is in. */
const RELAY = {
  EVENTPLANE_RELAY_NAME: 'main',
  EVENTPLANE_RELAY_BATCH_SIZE: '500',
  EVENTPLANE_RELAY_MAX_IN_FLIGHT: '500',
}

describe('faults: relay and gateway processes killed with SIGKILL', () => {
  const sys = useFaultSystem('ep_fault_kill')

  test('after SIGKILL of the relay between commit and publish and of the gateway mid-request, and a restart of both, every acknowledged append is in PostgreSQL once, in JetStream once, and projected once', {
    timeout: 90_000,
  }, async (t) => {
    const { env } = sys
    const jsm = await jetstreamManager(await env.natsAs('operator'))
    // The relay reaches NATS through a proxy that lets its first ACKED acks through and holds every later
    // answer: it is caught in the middle of a batch (published, not all acked) by construction, whatever
    // the timing.
    const gate = await startAckGate(env.server.port, ACKED)
    sys.defer(() => gate.close())
    const relay = sys.spawn('relay', { ...RELAY, EVENTPLANE_NATS_URL: gate.url })
    const gateway = sys.spawn('gateway')
    await Promise.all([relay.waitForLog('relay active'), gateway.waitForLog('gateway serving')])
    // Frozen while the clients' appends and the backlog are committed: it finds them all at once when it thaws.
    relay.freeze(true)
    const runner = await sys.projection('proj_fault_kill')
    await runner.start()

    const clients = await Promise.all(
      ['acme', 'acme', 'acme', 'globex', 'globex', 'globex'].map(async (tenant) => ({
        tenant,
        nc: await sys.client(tenant),
      })),
    )
    const load = startIntentLoad({ clients, eventsPerClient: 60, streams: 3, timeoutMs: 1000, deadlineMs: 45_000 })
    sys.defer(async () => load.stop())
    // A backlog committed straight to PostgreSQL, so the relay is mid-drain when it dies.
    const backlog = appendIntents(env.intents, 'globex', BACKLOG, 100, 'backlog')

    await eventually(() => load.ledger.acked.size >= 40, 'the clients to get acknowledgements')
    // One request certainly in flight when the gateway dies: the test holds its stream's next version,
    // so the gateway's append waits in PostgreSQL until after the kill.
    const held = { tenant: 'acme', category: 'deployment', id: 'held' }
    const heldEvent = EventFactory.forTenant('acme', { causedBy: 'user:held' }).intent(held, 'scaled', { held: true })
    const hold = await holdStream(sys.admin, held)
    sys.defer(() => hold.release())
    const holder = hold.pid
    const heldAck = submitUntilAcked(await sys.client('acme'), heldEvent, load.ledger, {
      deadline: Date.now() + 45_000,
      timeoutMs: 1000,
    })
    await eventually(async () => {
      const waiting = await sys.admin`select 1 from pg_stat_activity
        where datname = ${env.db.name} and application_name = ${GATEWAY_APPLICATION_NAME} and ${holder}::int = any(pg_blocking_pids(pid))`
      return waiting.length > 0
    }, 'the gateway to wait for the held stream')
    await gateway.kill('SIGKILL')
    const gatewayKilledAt = new Date()
    await hold.release()
    const ackedAtGatewayKill = load.ledger.acked.size
    // Kill the relay mid-batch: some of the batch published, its checkpoint not past its acks. Thawed, it
    // publishes its first batch of 500 whole before any ack is in and then waits for acks; after ACKED
    // the proxy holds the next one and every later answer. The relay gives up on them after its 5 s ack
    // timeout, settles its checkpoint writes and cannot resume (see killRelayMidBatch): it dies with more
    // published than it heard acked, every checkpoint it wrote stored. Its checkpoint may not pass what it heard.
    await within(backlog, 30_000, 'the backlog to be committed')
    const committed = async (): Promise<number> =>
      (await sys.admin<{ n: number }[]>`select count(*)::int as n from eventplane.events`)[0]!.n
    await killRelayMidBatch({ relay, gate, jsm })
    await gate.close()
    const publishedAtKill = gate.published
    const committedAtKill = await committed()
    const checkpointed = await checkpointedCount(sys.admin, 'main')
    const pastCheckpoint = publishedAtKill - checkpointed
    assert.ok(checkpointed <= ACKED, `the checkpoint (${checkpointed}) does not pass the ${ACKED} acks the relay got`)
    assert.ok(
      publishedAtKill < committedAtKill,
      `the relay died with committed events unpublished (${publishedAtKill} of ${committedAtKill} published)`,
    )
    assert.ok(
      pastCheckpoint > 0,
      'the relay died in the middle of a batch: published events past its stored checkpoint',
    )

    await sleep(500) // both down: clients keep retrying the same event ids
    const restartedRelay = sys.spawn('relay', RELAY)
    const restartedGateway = sys.spawn('gateway')
    await Promise.all([restartedRelay.waitForLog('relay active'), restartedGateway.waitForLog('gateway serving')])
    await within(Promise.all([load.done, backlog, heldAck]), 45_000, 'the clients and the backlog to finish')

    const { ledger } = load
    assert.ok(
      ledger.timedOut.has(heldEvent.event_id),
      'the request in flight when the gateway died timed out, and was retried',
    )
    // Tenant clients reach the gateway through their account's import: nats-server 2.9 reports no
    // "no responders" across accounts, so while it was down their requests timed out (the held one too).
    assert.ok(
      ledger.count('bus.timeout') + ledger.count('bus.unavailable') >= 2,
      `clients found no gateway while it was down (errors: ${ledger.summary()})`,
    )
    const rows = await assertNothingLostOrDoubled(sys, { runner, ledger, submitted: load.total + BACKLOG + 1 })
    const unanswered = rows.filter((r) => ledger.timedOut.has(r.event_id) && r.recorded_at < gatewayKilledAt).length
    const heldRow = rows.find((r) => r.event_id === heldEvent.event_id)
    assert.ok(
      heldRow !== undefined && heldRow.recorded_at < gatewayKilledAt,
      'the append of the killed gateway committed unanswered; the retry was answered from it',
    )
    t.diagnostic(
      `acked ${ledger.acked.size} (${ackedAtGatewayKill} before the gateway kill, ${ledger.retried} after a retry, ${unanswered} of them recorded before the kill but unanswered); ` +
        `failed attempts: ${ledger.summary()}; ` +
        `relay killed with ${publishedAtKill}/${committedAtKill} published, ${ACKED} acks let through, ${checkpointed} checkpointed, ${pastCheckpoint} past it`,
    )
  })
})
