/**
 * pnpm tsx scripts/bench/sub-decode.ts [--messages 2000] [--samples 15] [--base DIR] [--json] — the CPU `subscribe()`
 * spends on each delivery before handing it out, alone: what its map does per message (acceptLogMessage:
 * the relay's headers, the body's decode and checks, the subject; then the delivery's `info` and
 * `traceparent`), on real JetStream deliveries of relay-form events from a nats-server of its own, each
 * sample over fresh copies of the received messages (nothing decoded yet, as when they arrive). Beside it
 * the bare consumer's work on the same messages (`JSON.parse` of the body). Prints the median µs per
 * message of each; with `--json`, one last line `{"deliver":µs,"bare":µs}`. With `--base DIR` (a copy of
 * another commit's tree, its node_modules installed) the same work through that tree's modules too
 * (`deliverBase`), in the same process, samples alternating, and the median of the samples' deliver ÷
 * deliverBase: a same-run A/B of two commits. No socket or scheduling enters the measured loop, so the
 * figure holds on a loaded machine better than sub-ack.ts's process CPU.
 */
import { resolve } from 'node:path'
import { type RecordedEvent, EventFactory } from '@eventplane/core'
import {
  STREAM_NAME,
  acceptLogMessage,
  encodeEvent,
  ensureConsumer,
  eventHeaders,
  logSubject,
} from '@eventplane/bus-nats'
import { startNatsServer } from '@eventplane/bus-nats/testing'
import { type JsMsg, jetstream, jetstreamManager } from '@nats-io/jetstream'
import { headerValue } from '../../packages/bus-nats/src/codec.ts'
import { BENCH_DATA, freshEventplaneStream } from './bus-relay.ts'
import { argString, argValue, loadAvg, median } from './lib.ts'

const MESSAGES = argValue('messages', 2000)
const SAMPLES = argValue('samples', 15)

/** A copy of a received JetStream message as nats.js hands it out: nothing read from its bytes yet. */
function fresh(m: JsMsg): JsMsg {
  const received = (m as unknown as { msg: { _msg: unknown; _rdata: unknown; publisher: unknown } }).msg
  const Received = received.constructor as new (msg: unknown, data: unknown, publisher: unknown) => unknown
  const Js = m.constructor as new (msg: unknown, timeout: number) => JsMsg
  return new Js(new Received(received._msg, received._rdata, received.publisher), 5000)
}

type Accept = typeof acceptLogMessage
type HeaderValue = typeof headerValue

/** What subscribe()'s map does with a message before it hands the delivery out. */
const deliver =
  (accept: Accept, value: HeaderValue) =>
  (m: JsMsg): unknown => {
    const event = accept(m)
    const info = m.info
    const h = m.headers
    return [event, info.streamSequence, info.deliveryCount, h && value(h, 'traceparent')]
  }

const base = argString('base')
const work: Record<string, (m: JsMsg) => unknown> = {
  deliver: deliver(acceptLogMessage, headerValue),
  bare: (m: JsMsg) => JSON.parse(new TextDecoder().decode(m.data)),
}
if (base !== undefined) {
  const src = resolve(base, 'packages/bus-nats/src')
  const log = (await import(resolve(src, 'log-message.ts'))) as { acceptLogMessage: Accept }
  const codec = (await import(resolve(src, 'codec.ts'))) as { headerValue: HeaderValue }
  work.deliverBase = deliver(log.acceptLogMessage, codec.headerValue)
}
const names = Object.keys(work)

const load = loadAvg()
const nats = await startNatsServer({ withAuth: false })
const pub = await nats.connect('relay', { name: 'sub-decode-pub' })
const nc = await nats.connect('operator', { name: 'sub-decode' })
await freshEventplaneStream(await jetstreamManager(nc))
await ensureConsumer(await jetstreamManager(nc), { name: 'sub_decode', filter: { tenant: 'subbench' } })
const factory = EventFactory.forTenant('subbench', { causedBy: 'user:bench' })
const js = jetstream(pub)
for (let i = 0; i < MESSAGES; i++) {
  const e: RecordedEvent = {
    ...factory.intent({ category: 'deployment', id: `s${i % 100}` }, 'scaled', BENCH_DATA),
    stream_version: Math.floor(i / 100) + 1,
    global_position: BigInt(i + 1),
    tx_id: BigInt(1000 + i),
    recorded_at: new Date().toISOString(),
  }
  await js.publish(logSubject(e.kind, e.tenant_id, e.stream.category, e.stream.id), encodeEvent(e), {
    headers: eventHeaders(e),
  })
}
const received: JsMsg[] = []
const messages = await jetstream(nc)
  .consumers.get(STREAM_NAME, 'sub_decode')
  .then((c) => c.consume())
for await (const m of messages) {
  received.push(m)
  if (received.length === MESSAGES) break
}
const perMessage: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]))
// Sample 0 warms up; then the variants alternate, their order reversed every other sample.
for (let s = 0; s <= SAMPLES; s++) {
  for (const name of s % 2 === 0 ? names : [...names].reverse()) {
    const copies = received.map(fresh)
    const cpu0 = process.cpuUsage()
    for (const m of copies) work[name]!(m)
    const used = process.cpuUsage(cpu0)
    if (s > 0) perMessage[name]!.push((used.user + used.system) / MESSAGES)
  }
}
const result = Object.fromEntries(names.map((n) => [n, median(perMessage[n]!)]))
const figures = names.map((n) => `${n} ${result[n]!.toFixed(2)}`).join(', ')
console.log(`sub-decode: ${MESSAGES} messages, ${SAMPLES} samples; µs per message, median: ${figures}`)
if (base !== undefined) {
  const ratios = perMessage.deliver!.map((v, i) => v / perMessage.deliverBase![i]!)
  console.log(
    `deliver ÷ deliverBase per sample: median ${median(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`,
  )
}
console.log(`load ${load} → ${loadAvg()}`)
if (process.argv.includes('--json')) console.log(JSON.stringify(result))
await messages.close()
await pub.close()
await nc.close()
await nats.stop()
