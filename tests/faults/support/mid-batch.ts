import { activeRelayCheckpointWrites } from '@eventplane/store-pg/testing'
import type { JetStreamManager } from '@nats-io/jetstream'
import type { Sql } from 'postgres'
import { type ServiceProcess, eventually, streamCount, within } from '../../../packages/bus-nats/test/fixtures.ts'
import type { AckGate } from '@eventplane/bus-nats/testing'

/**
 * Kills a frozen relay child mid-batch, with no luck involved: thawed, it
 * publishes through `gate` until the gate holds back an ack, and is frozen
 * again in that same turn (before its own ack timeout can fire), with more
 * published than it heard acked. Its checkpoint writes already sent finish in
 * PostgreSQL (so the stored checkpoint is final), it is SIGKILLed, and every
 * publish it sent is in the stream before this returns. The gate stays open.
 */
export async function killRelayMidBatch(o: {
  relay: ServiceProcess
  gate: AckGate
  /** The superuser on the test's database, named `database`. */
  admin: Sql
  database: string
  jsm: JetStreamManager
}): Promise<void> {
  o.relay.freeze(false)
  await within(o.gate.held, 60_000, 'the relay to publish past its acks')
  o.relay.freeze(true)
  await eventually(
    async () => (await activeRelayCheckpointWrites(o.admin, o.database)).length === 0,
    'the relay checkpoint writes to finish',
  )
  await o.relay.kill('SIGKILL')
  await eventually(
    async () => (await streamCount(o.jsm)) === o.gate.published,
    'every publish the relay sent to be stored',
  )
}
