import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { EventFactory, compareCheckpoints } from '@eventplane/core'
import { ensureConsumer, subscribe } from '@eventplane/bus-nats'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { appendIntents, eventually, within } from '../../packages/bus-nats/test/fixtures.ts'
import {
  assertProjectionOnce,
  assertStreamCarriesLog,
  assertVersionsContiguous,
  checkpointedCount,
  endOf,
  logRows,
  reachesEnd,
} from './support/checks.ts'
import { startAckGate } from '@eventplane/bus-nats/testing'
import { killRelayMidBatch } from './support/mid-batch.ts'
import { type FaultSystem, TENANTS, startFaultSystem } from './support/system.ts'

const N = 500

describe('faults: the nats-server goes down under load', () => {
  const systems: FaultSystem[] = []
  const start = async (prefix: string): Promise<FaultSystem> => {
    const sys = await startFaultSystem(prefix)
    systems.push(sys)
    return sys
  }
  after(async () => {
    await Promise.allSettled(systems.map((s) => s.cleanup()))
  })

  test(`a nats-server killed and restarted during ${N} appends leaves a live projection with all ${N}, each applied once`, {
    timeout: 120_000,
  }, async (t) => {
    const sys = await start('ep_fault_natsdown')
    const relay = await sys.startRelay({ name: 'main' })
    await eventually(() => relay.state === 'active', 'the relay to be active')
    let liveAfterLoad = 0
    let loadDone = false
    const runner = await sys.projection('proj_fault_natsdown', {
      onProgress: (p) => p.phase === 'live' && loadDone && liveAfterLoad++,
    })
    await runner.start()

    // One event per append, paced so the load spans the outage; the last ones once the projection is live again.
    let appended = 0
    const append = async (): Promise<void> => {
      const tenant = TENANTS[appended % 2]!
      const stream = { tenant, category: 'deployment', id: `d-${appended % 7}` }
      await sys.env.intents.append(stream, [
        EventFactory.forTenant(tenant, { causedBy: 'user:load' }).intent(stream, 'scaled', { n: appended }),
      ])
      appended++
    }
    const load = (async () => {
      while (appended < N - 10) {
        await append()
        await sleep(4)
      }
    })()
    await eventually(() => appended >= 100, 'the load to be under way')
    await sys.env.server.kill()
    const atKill = appended
    await sleep(1500)
    await sys.env.server.restart()
    const atRestart = appended
    await within(load, 60_000, 'the load to finish')
    await eventually(() => runner.isLive, 'the projection to be live again')
    loadDone = true
    while (appended < N) await append()
    // A live batch reports its progress after its acks, and a runner that resyncs once more after the
    // outage applies what was appended meanwhile from PostgreSQL: wait for a live report, appending one
    // more event whenever the runner has applied everything without one.
    let extra = 0
    await eventually(
      async () => {
        if (liveAfterLoad > 0) return true
        if (compareCheckpoints(runner.checkpoint, endOf(await logRows(sys.admin))) >= 0) {
          await append()
          extra++
        }
        return false
      },
      'the projection applies events from JetStream again after the outage',
      30_000,
    )

    const rows = await logRows(sys.admin)
    assert.equal(rows.length, N + extra)
    assertVersionsContiguous(rows)
    await assertStreamCarriesLog(await sys.env.natsAs('operator'), rows)
    await reachesEnd(runner, endOf(rows))
    assert.ok(runner.isLive, 'the projection is live again')
    await runner.stop()
    await assertProjectionOnce(sys.projector, rows)
    t.diagnostic(
      `nats-server killed after ${atKill} appends, restarted after ${atRestart}; ${extra} appended after ${N} until one came live; relay stats ${JSON.stringify(relay.stats)}`,
    )
  })

  test('after an outage of NATS and the relay longer than the duplicate window, the restarted relay resumes after the last message of the stream: nothing past its checkpoint is stored twice', {
    timeout: 120_000,
  }, async (t) => {
    const sys = await start('ep_fault_dupwindow')
    const { env } = sys
    // The relay reaches NATS through a proxy that lets its first ACKED acks through and holds every later
    // answer: it is caught in the middle of a batch (published, not all acked) by construction, whatever
    // the timing.
    const ACKED = 300
    const WINDOW = 500
    const gate = await startAckGate(env.server.port, ACKED)
    sys.defer(() => gate.close())
    const relayEnv = {
      EVENTPLANE_RELAY_NAME: 'main',
      EVENTPLANE_RELAY_DUPLICATE_WINDOW_MS: '1000',
      EVENTPLANE_RELAY_BATCH_SIZE: '500',
      EVENTPLANE_RELAY_MAX_IN_FLIGHT: String(WINDOW),
    }
    const relay = sys.spawn('relay', { ...relayEnv, EVENTPLANE_NATS_URL: gate.url })
    await relay.waitForLog('relay active')
    const runner = await sys.projection('proj_fault_dupwindow')
    await runner.start()
    // A plain consumer of every message, to see what JetStream delivers.
    const ctl = await env.natsAs('controller')
    await ensureConsumer(await jetstreamManager(ctl), { name: 'raw_fault_dupwindow', filter: {} })
    const deliveries = new Map<string, Set<number>>()
    const raw = await subscribe(jetstream(ctl), { consumer: 'raw_fault_dupwindow' })
    sys.defer(() => raw.stop())
    void (async () => {
      for await (const d of raw) {
        // Redeliveries of one message are not copies: count each stream message (sequence) once. Not by the
        // redelivered flag: a nats-server SIGKILLed before it stored the consumer's state delivers again as new.
        const seqs = deliveries.get(d.event.event_id) ?? new Set<number>()
        deliveries.set(d.event.event_id, seqs.add(d.seq))
        await d.ack().catch(() => {})
      }
    })().catch(() => {})

    const jsm = await jetstreamManager(await env.natsAs('operator'))
    // Frozen while they are appended, the relay finds all 2,000 at once and publishes them in batches of
    // 500 with up to WINDOW un-acked: the first batch goes out whole before any ack is in, and the second
    // waits for acks. After ACKED acks the proxy holds the next one and every later answer: the relay is
    // stuck mid-batch, with more published than it heard acked, until its 5 s ack timeout; it then settles
    // its checkpoint writes and cannot resume, and is killed (see killRelayMidBatch). Its checkpoint may
    // not pass what it heard (ACKED, short of the first batch's end).
    relay.freeze(true)
    await appendIntents(env.intents, 'acme', 2000, 100, 'bulk')
    // The relay dies mid-batch (published past its checkpoint), then NATS goes down too.
    await killRelayMidBatch({ relay, gate, jsm })
    await gate.close()
    const checkpointed = await checkpointedCount(sys.admin, 'main')
    const pastCheckpoint = gate.published - checkpointed
    await env.server.kill()
    await sleep(2500) // 2.5 duplicate windows
    await env.server.restart()
    sys.spawn('relay', relayEnv)

    const rows = await logRows(sys.admin)
    // Its checkpoint lags the stream, and the window is long gone: only the stream's last message, an event of
    // the log, keeps the new relay from storing again what the dead one published after its checkpoint.
    const copies = await assertStreamCarriesLog(await env.natsAs('operator'), rows)
    assert.ok(checkpointed <= ACKED, `the checkpoint (${checkpointed}) does not pass the ${ACKED} acks the relay got`)
    assert.ok(pastCheckpoint > 0, 'the relay died with published events past its checkpoint')
    assert.equal(copies, 0, 'no event is in the stream twice')
    // Each of its ~2,000 acks waits for JetStream's confirmation before the next delivery is taken: on a loaded
    // two-core machine that alone can take longer than the default 20 s.
    await eventually(() => deliveries.size === rows.length, 'the plain consumer to see every event', 60_000)
    const twice = [...deliveries.values()].filter((seqs) => seqs.size > 1).length
    assert.equal(twice, 0, 'the plain consumer got each event once')
    await reachesEnd(runner, endOf(rows))
    await runner.stop()
    await assertProjectionOnce(sys.projector, rows)
    t.diagnostic(
      `${rows.length} events; relay killed with ${gate.published} published, ${ACKED} acks let through, ${checkpointed} checkpointed; ${copies} copies in the stream; ${twice} events delivered twice to the plain consumer`,
    )
  })
})
