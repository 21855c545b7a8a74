import type { JetStreamManager } from '@nats-io/jetstream'
import { type ServiceProcess, eventually, streamCount, within } from '../../../packages/bus-nats/test/fixtures.ts'
import type { AckGate } from '@eventplane/bus-nats/testing'

/** What the relay logs once a drain failed, after it waited for every checkpoint write it had started. */
export const RELAY_INTERRUPTED = 'relay interrupted; retrying'

/** The relay's own ack timeout (`publishTimeoutMs`, 5 s by default) and then some. */
const TIMED_OUT_WITHIN_MS = 30_000

/**
 * Kills a frozen relay child mid-batch, with no luck involved. Thawed, it
 * publishes through `gate` until the gate holds back an ack: it has published
 * more than it heard acked, and the gate holds every later answer, so it can
 * neither hear another ack nor resume. It waits there for its own ack timeout;
 * its drain then fails, waits for every checkpoint write it started (`RelayDrain.run`
 * and `#pump` settle the CheckpointWriter) and only then logs
 * {@link RELAY_INTERRUPTED}. From that line until its death the stored
 * checkpoint is final: the retry that follows needs a JetStream answer (the
 * stream's state) before it could store one, and the gate holds that too. So a
 * checkpoint the relay stored ahead of its acks is in PostgreSQL when it is
 * SIGKILLed, whether its write took one round trip or three (freezing it at the
 * held ack instead caught such a write in flight or not yet sent, depending on
 * the load). Every publish it sent is in the stream before this returns. The
 * gate stays open.
 */
export async function killRelayMidBatch(o: {
  relay: ServiceProcess
  gate: AckGate
  jsm: JetStreamManager
}): Promise<void> {
  const interrupted = (): number => o.relay.logs.filter((l) => l.msg === RELAY_INTERRUPTED).length
  o.relay.freeze(false)
  await within(o.gate.held, 60_000, 'the relay to publish past its acks')
  const before = interrupted()
  await eventually(
    () => interrupted() > before,
    'the relay to give up on the held acks, its checkpoint writes settled',
    TIMED_OUT_WITHIN_MS,
  )
  await o.relay.kill('SIGKILL')
  await eventually(
    async () => (await streamCount(o.jsm)) === o.gate.published,
    'every publish the relay sent to be stored',
  )
}
