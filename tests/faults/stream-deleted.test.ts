import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { STREAM_NAME } from '@eventplane/bus-nats'
import { projectionDigest } from '@eventplane/runtime'
import { loadRelayCheckpoint } from '@eventplane/store-pg'
import { jetstreamManager } from '@nats-io/jetstream'
import { appendIntents, eventually, streamCount } from '../../packages/bus-nats/test/fixtures.ts'
import {
  assertProjectionOnce,
  assertStreamCarriesLog,
  endOf,
  faultCounter,
  logRows,
  reachesEnd,
  rebuiltDigest,
} from './support/checks.ts'
import { useFaultSystem } from './support/system.ts'

describe('faults: the JetStream stream is deleted by the operator', () => {
  const sys = useFaultSystem('ep_fault_streamdel')

  test('a deleted stream is recreated by the relay and refilled from the start of the log; the projection recreates its consumer, applies nothing twice and equals a rebuild', {
    timeout: 60_000,
  }, async (t) => {
    const { env } = sys
    const operator = await env.natsAs('operator')
    const jsm = await jetstreamManager(operator)
    const relay = await sys.startRelay({ name: 'main' })
    await eventually(() => relay.state === 'active', 'the relay to be active')
    const runner = await sys.projection('proj_fault_streamdel')
    await runner.start()

    await appendIntents(env.intents, 'acme', 200, 50, 'before')
    await appendIntents(env.intents, 'globex', 100, 50, 'before')
    let rows = await logRows(sys.admin)
    await assertStreamCarriesLog(operator, rows)
    await reachesEnd(runner, endOf(rows))
    const before = await projectionDigest(sys.projector, faultCounter)
    const createdBefore = (await jsm.streams.info(STREAM_NAME)).created

    assert.equal(await jsm.streams.delete(STREAM_NAME), true, 'the operator deleted the stream')

    // Nothing is appended meanwhile: the relay notices on its own, recreates and refills the stream.
    await eventually(
      async () => (await streamCount(jsm)) === rows.length,
      'the relay to refill the recreated stream',
      30_000,
    )
    const createdAfter = (await jsm.streams.info(STREAM_NAME)).created
    assert.notEqual(createdAfter, createdBefore, 'the stream is a new one')
    await assertStreamCarriesLog(operator, rows)
    const [stored] = await sys.admin<
      { stream_created: string }[]
    >`select stream_created from eventplane.relay_checkpoints where name = 'main'`
    assert.equal(stored?.stream_created, createdAfter, 'the relay checkpoint now refers to the new stream')
    await eventually(
      async () => (await jsm.consumers.info(STREAM_NAME, 'proj_fault_streamdel').catch(() => undefined)) !== undefined,
      'the projection to recreate its consumer',
      30_000,
    )
    assert.equal(
      (await projectionDigest(sys.projector, faultCounter)).sha256,
      before.sha256,
      'the refill was not applied a second time',
    )
    assert.equal(
      await rebuiltDigest(sys.projector, rows.length),
      before.sha256,
      'a projection rebuilt after the deletion equals the one from before',
    )

    // New events reach the projection through the recreated consumer.
    await appendIntents(env.intents, 'acme', 100, 50, 'after')
    rows = await logRows(sys.admin)
    await assertStreamCarriesLog(operator, rows)
    await reachesEnd(runner, endOf(rows))
    await eventually(
      async () => (await jsm.consumers.info(STREAM_NAME, 'proj_fault_streamdel')).delivered.stream_seq === rows.length,
      'the new consumer to deliver the new events',
    )
    assert.equal((await loadRelayCheckpoint(env.relayStore.sql, 'main')).position, BigInt(rows.at(-1)!.global_position))
    await runner.stop()
    await assertProjectionOnce(sys.projector, rows)
    t.diagnostic(
      `${rows.length - 100} events before the deletion, 100 after; relay stats ${JSON.stringify(relay.stats)}`,
    )
  })
})
