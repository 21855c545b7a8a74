/**
 * pnpm tsx scripts/bench/sub-ack.ts [--rounds 3] [--events 3000] [--rate 1000] [--variants confirmer,ackAck,bare]
 * [--base DIR] [--json] — the subscriber's own cost, alone: one process publishes relay-form events into
 * EVENTPLANE at a fixed rate (core publishes, the same for every variant) and consumes them live through a
 * fresh pull consumer, alternating variants each round: `subscribe()` as it is (acks confirmed by the
 * AckConfirmer), `subscribe()` with nats.js `ackAck` (what it did before), and a bare consumer (`consume()` +
 * `JSON.parse` + a plain `ack()`). `--variants` picks some (one alone for a `--cpu-prof`); `--base DIR` adds
 * `confirmerBase`, another tree's `subscribe()` (see BASE below), and prints the rounds' ratios to it.
 * Reports this process's CPU per event and publish → delivered latency, p50/p99, per variant (median
 * of rounds, after a warm-up round). The acks are not awaited per message (like bench:bus), but each must be
 * confirmed (checked at the end), except the bare one's. `--json`: the medians as a last line.
 */
import { resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { type RecordedEvent, EventFactory } from '@eventplane/core'
import { STREAM_NAME, encodeEvent, ensureConsumer, eventHeaders, logSubject, subscribe } from '@eventplane/bus-nats'
import { startNatsServer } from '@eventplane/bus-nats/testing'
import { type JetStreamClient, jetstream, jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import { BENCH_DATA, freshEventplaneStream } from './bus-relay.ts'
import { alternatedRounds, argString, argValue, cpuUsSince, loadAvg, median, percentile } from './lib.ts'

const ROUNDS = argValue('rounds', 3)
const EVENTS = argValue('events', 3000)
const RATE = argValue('rate', 1000)

type Variant = 'confirmer' | 'ackAck' | 'bare' | 'confirmerBase'

/**
 * `--base DIR` (a copy of another commit's tree whose node_modules is a link to this tree's, so both use one
 * nats.js): variant `confirmerBase` is that tree's `subscribe()`, in this process beside this tree's: a
 * same-run A/B of two commits' subscriber, rounds alternating.
 */
const BASE = argString('base')
const baseSubscribe =
  BASE === undefined
    ? undefined
    : ((await import(resolve(BASE, 'packages/bus-nats/src/subscription.ts'))) as { subscribe: typeof subscribe })
        .subscribe

interface Result {
  cpuUsPerEvent: number
  p50: number
  p99: number
}

/** The client with its connection hidden, so subscribe() falls back to nats.js `ackAck` (its path before). */
function withoutConnection(js: JetStreamClient): JetStreamClient {
  return new Proxy(js, { get: (t, k) => (k === 'nc' ? undefined : Reflect.get(t, k)) })
}

async function runVariant(pubNc: NatsConnection, subNc: NatsConnection, variant: Variant, round: number) {
  const jsm = await jetstreamManager(subNc)
  const name = `subbench_${variant}_${round}`
  await ensureConsumer(jsm, { name, filter: { tenant: 'subbench' }, deliver: 'new' })
  const sentAt = new Map<string, number>()
  const latencies: number[] = []
  const acks: Promise<void>[] = []
  let received = 0
  let done!: () => void
  const finished = new Promise<void>((r) => (done = r))
  const js = jetstream(subNc)
  let stop: () => Promise<void>
  if (variant === 'bare') {
    const consumer = await js.consumers.get(STREAM_NAME, name)
    const messages = await consumer.consume({ max_messages: 100 })
    stop = async () => void (await messages.close())
    void (async () => {
      for await (const m of messages) {
        const { event_id } = JSON.parse(new TextDecoder().decode(m.data)) as { event_id: string }
        latencies.push(performance.now() - sentAt.get(event_id)!)
        m.ack()
        if (++received === EVENTS) done()
      }
    })()
  } else {
    const subscribeOf = variant === 'confirmerBase' ? baseSubscribe! : subscribe
    const sub = await subscribeOf(variant === 'ackAck' ? withoutConnection(js) : js, { consumer: name })
    stop = () => sub.stop()
    void (async () => {
      for await (const d of sub) {
        latencies.push(performance.now() - sentAt.get(d.event.event_id)!)
        acks.push(d.ack())
        if (++received === EVENTS) done()
      }
    })()
  }
  const factory = EventFactory.forTenant('subbench', { causedBy: 'user:bench' })
  const events: RecordedEvent[] = Array.from({ length: EVENTS }, (_, i) => ({
    ...factory.intent({ category: 'deployment', id: `s${i % 100}` }, 'scaled', BENCH_DATA),
    stream_version: Math.floor(i / 100) + 1,
    global_position: BigInt(round * EVENTS + i + 1),
    tx_id: BigInt(1000 + round * EVENTS + i),
    recorded_at: new Date().toISOString(),
  }))
  const wire = events.map((e) => ({
    id: e.event_id,
    subject: logSubject(e.kind, e.tenant_id, e.stream.category, e.stream.id),
    bytes: encodeEvent(e),
    headers: eventHeaders(e),
  }))
  await sleep(200)
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  for (let i = 0; i < wire.length; i++) {
    const due = t0 + (i * 1000) / RATE
    const wait = due - performance.now()
    if (wait > 1) await sleep(wait)
    const w = wire[i]!
    sentAt.set(w.id, performance.now())
    pubNc.publish(w.subject, w.bytes, { headers: w.headers })
  }
  await finished
  await Promise.all(acks)
  const cpuUs = cpuUsSince(cpu0)
  await stop()
  await jsm.consumers.delete(STREAM_NAME, name)
  return {
    cpuUsPerEvent: cpuUs / EVENTS,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  } satisfies Result
}

async function main(): Promise<void> {
  const load = loadAvg()
  const nats = await startNatsServer({ withAuth: false })
  try {
    const pubNc = await nats.connect('relay', { name: 'subbench-pub' })
    const subNc = await nats.connect('operator', { name: 'subbench-sub' })
    await freshEventplaneStream(await jetstreamManager(subNc))
    // One variant alone (`--variants confirmer`) for a `--cpu-prof` of it.
    const variants = argString('variants', 'confirmer,ackAck,bare').split(',') as Variant[]
    if (BASE !== undefined && !variants.includes('confirmerBase')) variants.push('confirmerBase')
    // Round 0 warms up (JIT, the stream's first messages) and is not counted.
    const results = await alternatedRounds(
      variants,
      ROUNDS,
      'reverse',
      (v, round) => runVariant(pubNc, subNc, v, round),
      (v, round, r) =>
        process.stderr.write(
          `round ${round} ${v}: CPU ${r.cpuUsPerEvent.toFixed(1)} µs/event, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms (load ${loadAvg(1)})\n`,
        ),
    )
    console.log(`sub-ack: ${ROUNDS} rounds × ${EVENTS} events at ${RATE} ev/s; load at start ${load}`)
    console.table(
      variants.map((v) => {
        const rs = results.get(v) ?? []
        return {
          variant: v,
          'process CPU µs/event (median)': median(rs.map((r) => r.cpuUsPerEvent)).toFixed(1),
          'p50 ms': median(rs.map((r) => r.p50)).toFixed(2),
          'p99 ms': median(rs.map((r) => r.p99)).toFixed(2),
        }
      }),
    )
    if (BASE !== undefined) {
      const cpu = (v: Variant) => (results.get(v) ?? []).map((r) => r.cpuUsPerEvent)
      const bare = cpu('bare')
      const ratios = cpu('confirmer').map((c, i) => c / cpu('confirmerBase')[i]!)
      const gaps = cpu('confirmer').map((c, i) => (c - bare[i]!) / (cpu('confirmerBase')[i]! - bare[i]!))
      const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`
      console.log(
        `confirmer ÷ confirmerBase per round: median ${median(ratios).toFixed(3)} (${range(ratios)})` +
          (bare.length === ratios.length ? `; over bare, same round: ${median(gaps).toFixed(3)} (${range(gaps)})` : ''),
      )
    }
    // `--json`: the medians as one last line, for a driver that compares two trees (scripts/bench/tree-ab.ts).
    if (process.argv.includes('--json'))
      console.log(
        JSON.stringify(
          Object.fromEntries(variants.map((v) => [v, median((results.get(v) ?? []).map((r) => r.cpuUsPerEvent))])),
        ),
      )
    await pubNc.close()
    await subNc.close()
  } finally {
    await nats.stop()
  }
}

await main()
