/**
 * pnpm tsx scripts/bench/ack-ab.ts --base DIR [--messages 2000] [--rounds 8] — the AckConfirmer of this tree
 * against the one in DIR (a copy of another commit's tree), in one process, rounds alternating: each round
 * fetches `--messages` relay-form messages from a fresh JetStream consumer (one per side and round) and then
 * acks them one at a time, each ack confirmed before the next is sent (a subscriber at a steady rate, where
 * the confirmer is idle between acks), each side on a connection of its own. Reports this process's CPU
 * per confirmed ack, the median of the rounds, and the median of the rounds' new ÷ base ratios.
 */
import { resolve } from 'node:path'
import { STREAM_NAME, ensureConsumer, logSubject } from '@eventplane/bus-nats'
import { startNatsServer } from '@eventplane/bus-nats/testing'
import { type JsMsg, jetstream, jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import { AckConfirmer } from '../../packages/bus-nats/src/ack-confirmer.ts'
import { freshEventplaneStream } from './bus-relay.ts'
import { argString, argValue, cpuUsSince, loadAvg, median } from './lib.ts'

const base = argString('base')
if (base === undefined) throw new Error('usage: ack-ab.ts --base DIR')
const MESSAGES = argValue('messages', 2000)
const ROUNDS = argValue('rounds', 8)
const Base = (
  (await import(resolve(base, 'packages/bus-nats/src/ack-confirmer.ts'))) as { AckConfirmer: typeof AckConfirmer }
).AckConfirmer
const sides = { base: Base, new: AckConfirmer }
type Side = keyof typeof sides

const load = loadAvg()
const nats = await startNatsServer({ withAuth: false })
const admin = await nats.connect('operator', { name: 'ack-ab' })
const jsm = await jetstreamManager(admin)
await freshEventplaneStream(jsm)
const conns: Record<Side, NatsConnection> = {
  base: await nats.connect('operator', { name: 'ack-ab-base' }),
  new: await nats.connect('operator', { name: 'ack-ab-new' }),
}
const subject = logSubject('intent', 'ackab', 'deployment', 'd1')

async function round(side: Side, n: number): Promise<number> {
  const name = `ackab_${side}_${n}`
  await ensureConsumer(jsm, { name, filter: { tenant: 'ackab' }, deliver: 'new', maxAckPending: MESSAGES })
  const js = jetstream(admin)
  for (let i = 0; i < MESSAGES; i++) js.publish(subject, new Uint8Array(100))
  await admin.flush()
  const nc = conns[side]
  const consumer = await jetstream(nc).consumers.get(STREAM_NAME, name)
  const got: JsMsg[] = []
  const it = await consumer.fetch({ max_messages: MESSAGES, expires: 10_000 })
  for await (const m of it) got.push(m)
  if (got.length !== MESSAGES) throw new Error(`fetched ${got.length}`)
  const confirmer = sides[side].for(nc)
  const release = confirmer.hold()
  const cpu0 = process.cpuUsage()
  for (const m of got) await confirmer.ack((m as unknown as { reply: string }).reply, { timeoutMs: 5000 })
  const us = cpuUsSince(cpu0) / MESSAGES
  release()
  await jsm.consumers.delete(STREAM_NAME, name)
  return us
}

const results: Record<Side, number[]> = { base: [], new: [] }
for (let r = 0; r <= ROUNDS; r++) {
  for (const side of r % 2 === 0 ? (['base', 'new'] as const) : (['new', 'base'] as const)) {
    const us = await round(side, r)
    if (r > 0) results[side].push(us)
  }
}
const ratios = results.new.map((v, i) => v / results.base[i]!)
console.log(
  `ack-ab: ${ROUNDS} rounds × ${MESSAGES} acks; CPU µs per confirmed ack, median: base ${median(results.base).toFixed(1)}, new ${median(results.new).toFixed(1)}; new ÷ base ${median(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}); load ${load} → ${loadAvg()}`,
)
for (const c of [...Object.values(conns), admin]) await c.close()
await nats.stop()
