/**
 * bench:bus part 1 — the relay draining the whole log into a fresh EVENTPLANE
 * stream vs raw JetStream publishes of the same encoded messages, with the
 * same in-flight window, into a fresh stream of the same config. Two
 * baselines: nats.js `js.publish` (issue 15's target), and the technique the
 * relay's publisher uses without the relay (core publishes with a reply
 * subject under one wildcard subscription, acks matched by token), so the
 * relay's own cost is not hidden by a cheaper way to publish.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { type Checkpoint, EventFactory, START } from '@eventplane/core'
import { PgEventStore, type Sql } from '@eventplane/store-pg'
import { Relay, STREAM_NAME, encodeEvent, ensureStream, logSubject } from '@eventplane/bus-nats'
import {
  type JetStreamClient,
  type JetStreamManager,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream'
import { type NatsConnection, createInbox, headers } from '@nats-io/transport-node'
import { type Comparison, type Measurement, compare, cpuMsSince } from './lib.ts'

/** The relay's default window (RelayOptions.maxInFlight); the raw side uses the same. */
export const WINDOW = 256
const STREAM_NOT_FOUND = 10059
export const BENCH_DATA = {
  image: 'registry.example/web:1.2.3',
  replicas: 3,
  labels: { team: 'platform', tier: 'web' },
}

interface RawMessage {
  subject: string
  bytes: Uint8Array
  id: string
}

/** Appends `events` intents as one-stream batches of 1000 (the store's maximum batch) through PgEventStore. */
export async function prefillLog(writer: PgEventStore, events: number): Promise<void> {
  const factory = EventFactory.forTenant('bench', { causedBy: 'user:bench' })
  for (let done = 0, batch = 0; done < events; batch++) {
    const n = Math.min(1000, events - done)
    const stream = { tenant: 'bench', category: 'deployment', id: `p${batch}` }
    await writer.append(
      stream,
      Array.from({ length: n }, () => factory.intent(stream, 'scaled', BENCH_DATA)),
    )
    done += n
  }
}

/** Deletes the EVENTPLANE stream (if any) and creates it again: no messages, no duplicate-window memory. */
export async function freshEventplaneStream(jsm: JetStreamManager): Promise<void> {
  try {
    await jsm.streams.delete(STREAM_NAME)
  } catch (e) {
    if (!(e instanceof JetStreamApiError && e.code === STREAM_NOT_FOUND)) throw e
  }
  await ensureStream(jsm)
}

/** `js.publish` with a msgID for every message, at most `window` un-acked; returns the duplicate acks seen. */
async function publishWindowed(js: JetStreamClient, messages: readonly RawMessage[], window: number): Promise<number> {
  let inFlight = 0
  let duplicates = 0
  let failure: unknown
  let wake: (() => void) | undefined
  const settled = (): void => {
    inFlight--
    const w = wake
    wake = undefined
    w?.()
  }
  for (const m of messages) {
    while (inFlight >= window) await new Promise<void>((resolve) => (wake = resolve))
    if (failure !== undefined) break
    inFlight++
    js.publish(m.subject, m.bytes, { msgID: m.id }).then(
      (ack) => {
        if (ack.duplicate) duplicates++
        settled()
      },
      (e: unknown) => {
        failure ??= e
        settled()
      },
    )
  }
  while (inFlight > 0) await new Promise<void>((resolve) => (wake = resolve))
  if (failure !== undefined) throw failure
  return duplicates
}

/**
 * The relay publisher's technique alone: `nc.publish` with reply `<inbox>.<i>`
 * and `Nats-Msg-Id`, one wildcard subscription for the acks, at most `window`
 * un-acked; no expectation chain, no timeouts. Returns the duplicate acks seen.
 */
async function publishAsyncWindowed(
  nc: NatsConnection,
  messages: readonly RawMessage[],
  window: number,
): Promise<number> {
  const prefix = `${createInbox()}.`
  let inFlight = 0
  let duplicates = 0
  let failure: unknown
  let wake: (() => void) | undefined
  const decoder = new TextDecoder()
  const sub = nc.subscribe(`${prefix}*`, {
    callback: (err, m) => {
      try {
        if (err !== null) throw err
        const ack = JSON.parse(decoder.decode(m.data)) as { stream?: string; duplicate?: boolean; error?: unknown }
        if (ack.error !== undefined || ack.stream !== STREAM_NAME) throw new Error(`publish refused: ${m.string()}`)
        if (ack.duplicate) duplicates++
      } catch (e) {
        failure ??= e
      }
      inFlight--
      const w = wake
      wake = undefined
      w?.()
    },
  })
  try {
    for (let i = 0; i < messages.length; i++) {
      while (inFlight >= window) await new Promise<void>((resolve) => (wake = resolve))
      if (failure !== undefined) break
      const m = messages[i]!
      const h = headers()
      h.set('Nats-Msg-Id', m.id)
      inFlight++
      nc.publish(m.subject, m.bytes, { reply: prefix + i, headers: h })
    }
    while (inFlight > 0) await new Promise<void>((resolve) => (wake = resolve))
  } finally {
    sub.unsubscribe()
  }
  if (failure !== undefined) throw failure
  return duplicates
}

async function streamMessages(jsm: JetStreamManager): Promise<number> {
  return (await jsm.streams.info(STREAM_NAME)).state.messages
}

export interface RelayThroughputOptions {
  /** A pool connected as eventplane_relay. */
  relaySql: Sql
  nc: NatsConnection
  events: number
  rounds: number
  target: number
  /** Un-acked publishes allowed, raw and relay alike. Default WINDOW. */
  window?: number
  /** Called just before a round starts its clock (after the fresh stream), and with its measurement at the end. */
  around?: { start(side: 'raw' | 'async' | 'ours'): Promise<void>; end(m: Measurement): Promise<void> }
}

/**
 * Alternates rounds of raw `js.publish`, of the async-publish baseline and of
 * a fresh relay (new checkpoint name, fresh stream) draining the log from the
 * start; a relay round ends when its stored checkpoint reaches the log's head.
 * Each round checks that the stream holds exactly `events` messages and that
 * no ack was a duplicate. The comparison is against `js.publish`; `againstAsync`
 * holds the same relay rounds against the async baseline.
 */
export async function benchRelayThroughput(
  o: RelayThroughputOptions,
): Promise<Comparison & { againstAsync: Comparison }> {
  const { raw, rawAsync, ours } = await relayRounds(o)
  const window = o.window ?? WINDOW
  const asyncRounds: Measurement[] = []
  const vsJs = await compare(
    `relay drains ${o.events} events vs raw js.publish (window ${window})`,
    o.target,
    o.rounds,
    raw,
    async () => {
      asyncRounds.push(await rawAsync())
      return ours()
    },
  )
  const againstAsync: Comparison = {
    name: `relay drains ${o.events} events vs raw async publish (window ${window})`,
    target: o.target,
    raw: asyncRounds,
    ours: vsJs.ours,
  }
  return { ...vsJs, againstAsync }
}

/** One raw round and one relay round (see benchRelayThroughput), to alternate. */
export async function relayRounds(o: Omit<RelayThroughputOptions, 'rounds' | 'target'>): Promise<{
  raw: () => Promise<Measurement>
  rawAsync: () => Promise<Measurement>
  ours: () => Promise<Measurement>
}> {
  const window = o.window ?? WINDOW
  const jsm = await jetstreamManager(o.nc)
  const js = jetstream(o.nc)
  const reader = new PgEventStore(o.relaySql)
  const messages: RawMessage[] = []
  let head: Checkpoint = START
  // On a shared server another database's open transaction can hold the gap-safe read back for a while.
  for (const deadline = Date.now() + 120_000; messages.length < o.events && Date.now() < deadline; await sleep(200))
    for await (const batch of reader.readAll({ from: head, batchSize: 1000 })) {
      for (const e of batch) {
        messages.push({
          subject: logSubject(e.kind, e.tenant_id, e.stream.category, e.stream.id),
          bytes: encodeEvent(e),
          id: e.event_id,
        })
        head = { txId: e.tx_id, position: e.global_position }
      }
    }
  if (messages.length !== o.events) throw new Error(`the log holds ${messages.length} events, expected ${o.events}`)
  const checkStored = async (side: string): Promise<void> => {
    const stored = await streamMessages(jsm)
    if (stored !== o.events) throw new Error(`${side}: the stream holds ${stored} messages, expected ${o.events}`)
  }
  let round = 0

  const baseline = (side: 'raw' | 'async', publish: () => Promise<number>) => async (): Promise<Measurement> => {
    await freshEventplaneStream(jsm)
    await o.around?.start(side)
    const cpu = process.cpuUsage()
    const start = performance.now()
    const duplicates = await publish()
    const seconds = (performance.now() - start) / 1000
    const cpuMs = cpuMsSince(cpu)
    const m = { ops: 1, events: messages.length, seconds, latenciesMs: [], cpuMs }
    await o.around?.end(m)
    if (duplicates > 0) throw new Error(`${side} publish: ${duplicates} acks were duplicates on a fresh stream`)
    await checkStored(`${side} publish`)
    return m
  }
  const raw = baseline('raw', () => publishWindowed(js, messages, window))
  const rawAsync = baseline('async', () => publishAsyncWindowed(o.nc, messages, window))

  const ours = async (): Promise<Measurement> => {
    await freshEventplaneStream(jsm)
    const relay = new Relay({ sql: o.relaySql, nc: o.nc, name: `bench_tp_${++round}`, maxInFlight: window })
    await o.around?.start('ours')
    const cpu = process.cpuUsage()
    const start = performance.now()
    let m: Measurement
    relay.start()
    try {
      for (;;) {
        const c = relay.checkpoint
        if (c !== undefined && c.txId === head.txId && c.position === head.position) break
        if (relay.state === 'stopped')
          throw new Error('the relay stopped before reaching the head', {
            cause: await relay.closed.catch((e: unknown) => e),
          })
        await sleep(5)
      }
      const seconds = (performance.now() - start) / 1000
      m = { ops: 1, events: messages.length, seconds, latenciesMs: [], cpuMs: cpuMsSince(cpu) }
      await o.around?.end(m)
    } finally {
      await relay.stop()
    }
    const { published, duplicates } = relay.stats
    if (published !== o.events || duplicates > 0)
      throw new Error(`relay: ${published} published, ${duplicates} duplicates; expected ${o.events}, 0`)
    await checkStored('relay')
    return m
  }

  return { raw, rawAsync, ours }
}
