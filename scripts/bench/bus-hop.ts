/**
 * pnpm tsx scripts/bench/bus-hop.ts [--rounds 3] [--events 3000] — what bench:bus's `bus` stage (a publish
 * into EVENTPLANE → seen by a core subscription) costs, by how the messages are published: one per
 * tick (bare's js.publish after each NOTIFY) or in bursts written at once (the relay sends one read's rows
 * in one tick), with only `Nats-Msg-Id` or with the relay's headers and `Nats-Expected-Last-Msg-Id`. One
 * process, 1,000 ev/s, every publish carries a reply subject (the stream acks it), variants alternated.
 * The last variant is the relay's `soloWriteRows` path: bursts, each publish in a socket write of its own.
 */
import { loadavg } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { EventFactory, type RecordedEvent } from '@eventplane/core'
import { encodeEvent, eventHeaders, logSubject } from '@eventplane/bus-nats'
import { startNatsServer } from '@eventplane/bus-nats/testing'
import { jetstreamManager } from '@nats-io/jetstream'
import { type MsgHdrs, createInbox, headers as natsHeaders } from '@nats-io/transport-node'
import { BENCH_DATA, freshEventplaneStream } from './bus-relay.ts'
import { argValue, percentile } from './lib.ts'

const ROUNDS = argValue('rounds', 3)
const EVENTS = argValue('events', 3000)
const VARIANTS = [
  { name: 'one per tick, Nats-Msg-Id only', burst: 1, relayHeaders: false, solo: false },
  { name: 'one per tick, relay headers + expected last id', burst: 1, relayHeaders: true, solo: false },
  { name: 'bursts of 5, Nats-Msg-Id only', burst: 5, relayHeaders: false, solo: false },
  { name: 'bursts of 5, relay headers + expected last id', burst: 5, relayHeaders: true, solo: false },
  // The relay's soloWriteRows path: the same bursts, each publish written on its own (a microtask between).
  { name: 'bursts of 5, relay headers, one write each', burst: 5, relayHeaders: true, solo: true },
] as const

const nats = await startNatsServer({ withAuth: false })
try {
  const pubNc = await nats.connect('relay')
  const busNc = await nats.connect('operator')
  await freshEventplaneStream(await jetstreamManager(busNc))
  const inbox = createInbox()
  pubNc.subscribe(`${inbox}.*`, { callback: () => {} })
  const publishedAt = new Map<string, number>()
  let hops: number[] = []
  busNc.subscribe('eventplane.>', {
    callback: (_, m) => {
      const id = m.headers?.get('Nats-Msg-Id')
      const at = id ? publishedAt.get(id) : undefined
      if (at !== undefined) hops.push(performance.now() - at)
    },
  })
  await busNc.flush()
  const factory = EventFactory.forTenant('hop', { causedBy: 'user:bench' })
  let position = 0n
  let lastId: string | undefined
  const results = new Map<string, number[][]>(VARIANTS.map((v) => [v.name, []]))
  for (let round = 0; round <= ROUNDS; round++) {
    for (const v of round % 2 === 0 ? VARIANTS : [...VARIANTS].reverse()) {
      hops = []
      publishedAt.clear()
      const t0 = performance.now()
      for (let i = 0; i < EVENTS; i += v.burst) {
        const wait = t0 + i - performance.now()
        if (wait > 1) await sleep(wait)
        for (let j = 0; j < v.burst; j++) {
          position++
          const e: RecordedEvent = {
            ...factory.intent({ category: 'deployment', id: `h${i % 100}` }, 'scaled', BENCH_DATA),
            stream_version: 1,
            global_position: position,
            tx_id: position + 1000n,
            recorded_at: new Date().toISOString(),
          }
          let h: MsgHdrs
          if (v.relayHeaders) {
            h = eventHeaders(e)
            h.set('traceparent', `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`)
            if (lastId) h.set('Nats-Expected-Last-Msg-Id', lastId)
          } else {
            h = natsHeaders()
            h.set('Nats-Msg-Id', e.event_id)
          }
          lastId = e.event_id
          publishedAt.set(e.event_id, performance.now())
          pubNc.publish(logSubject(e.kind, e.tenant_id, e.stream.category, e.stream.id), encodeEvent(e), {
            headers: h,
            reply: `${inbox}.${position}`,
          })
          if (v.solo) await new Promise<void>((resolve) => queueMicrotask(resolve))
        }
      }
      await pubNc.flush()
      await busNc.flush()
      if (round > 0) results.get(v.name)!.push([percentile(hops, 50), percentile(hops, 90), percentile(hops, 99)])
    }
  }
  console.log(`bus-hop: ${ROUNDS} rounds × ${EVENTS} events at 1,000 ev/s; load ${loadavg()[0]!.toFixed(2)}`)
  console.table(
    VARIANTS.map((v) => {
      const rs = results.get(v.name)!
      const med = (k: number) =>
        percentile(
          rs.map((r) => r[k]!),
          50,
        ).toFixed(2)
      return { variant: v.name, 'publish → core sub p50 ms': med(0), p90: med(1), p99: med(2) }
    }),
  )
  await pubNc.close()
  await busNc.close()
} finally {
  await nats.stop()
}
