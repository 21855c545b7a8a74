/**
 * node --expose-gc --import tsx scripts/bench/resubscribe.ts [--cycles 2000] — what a process that
 * re-subscribes on one long-lived connection keeps: each cycle publishes one relay-form event, subscribes to
 * a durable consumer, acks the event (confirmed), stops and waits for the subscription to close. Prints the
 * heap used after a full GC and the client's subscription count before and after the cycles, and the CPU
 * per cycle. (The ack confirmer used to be one per subscription, each kept by its `nc.closed()` reaction.)
 */
import { type RecordedEvent, EventFactory } from '@eventplane/core'
import { encodeEvent, ensureConsumer, eventHeaders, logSubject, subscribe } from '@eventplane/bus-nats'
import { startNatsServer } from '@eventplane/bus-nats/testing'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import { BENCH_DATA, freshEventplaneStream } from './bus-relay.ts'
import { argValue, cpuUsSince, loadAvg } from './lib.ts'

const CYCLES = argValue('cycles', 2000)

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with node --expose-gc')

/** nats.js keeps its subscriptions on the protocol handler; no public count. */
function clientSubscriptions(nc: NatsConnection): number {
  return (nc as unknown as { protocol: { subscriptions: { size(): number } } }).protocol.subscriptions.size()
}

function heapAfterGc(): number {
  gc!()
  gc!()
  return process.memoryUsage().heapUsed
}

async function main(): Promise<void> {
  const load = loadAvg()
  const nats = await startNatsServer({ withAuth: false })
  try {
    const pubNc = await nats.connect('relay', { name: 'resub-pub' })
    const nc = await nats.connect('operator', { name: 'resub-sub' })
    const jsm = await jetstreamManager(nc)
    await freshEventplaneStream(jsm)
    await ensureConsumer(jsm, { name: 'resub', filter: { tenant: 'resub' } })
    const js = jetstream(nc)
    const factory = EventFactory.forTenant('resub', { causedBy: 'user:bench' })
    const cycle = async (i: number): Promise<void> => {
      const e: RecordedEvent = {
        ...factory.intent({ category: 'deployment', id: 'r' }, 'scaled', BENCH_DATA),
        stream_version: i + 1,
        global_position: BigInt(i + 1),
        tx_id: BigInt(1000 + i),
        recorded_at: new Date().toISOString(),
      }
      pubNc.publish(logSubject(e.kind, e.tenant_id, e.stream.category, e.stream.id), encodeEvent(e), {
        headers: eventHeaders(e),
      })
      const sub = await subscribe(js, { consumer: 'resub', batch: 1 })
      const r = await sub[Symbol.asyncIterator]().next()
      if (r.done) throw new Error('the subscription ended early')
      await r.value.ack()
      await sub.stop()
      await sub.closed
    }
    for (let i = 0; i < 50; i++) await cycle(i)
    const heap0 = heapAfterGc()
    const subs0 = clientSubscriptions(nc)
    const cpu0 = process.cpuUsage()
    for (let i = 50; i < 50 + CYCLES; i++) await cycle(i)
    const cpuUs = cpuUsSince(cpu0)
    const heap1 = heapAfterGc()
    console.log(
      JSON.stringify({
        cycles: CYCLES,
        load_at_start: load,
        load_at_end: loadAvg(1),
        heap_growth_bytes_per_cycle: Math.round((heap1 - heap0) / CYCLES),
        client_subscriptions: [subs0, clientSubscriptions(nc)],
        cpu_us_per_cycle: Math.round(cpuUs / CYCLES),
      }),
    )
  } finally {
    await nats.stop()
  }
}

await main()
