/**
 * The two append → subscriber paths bench:bus times (see bus-latency.ts):
 * eventplane's (append, Relay, subscribe()) and a bare one.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { channel as traceChannel } from 'node:diagnostics_channel'
import { setTimeout as sleep } from 'node:timers/promises'
import { EventFactory, START } from '@eventplane/core'
import { PgEventStore, type Sql, countEventsAfter, loadRelayCheckpoint } from '@eventplane/store-pg'
import { subscribe as onChannel, unsubscribe as offChannel } from 'node:diagnostics_channel'
import { RELAY_TRACE, type Subscription, Relay, ensureConsumer, subscribe } from '@eventplane/bus-nats'
import {
  type ConsumerMessages,
  AckPolicy,
  DeliverPolicy,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream'
import { type NatsConnection, type Subscription as NatsSubscription, nanos } from '@nats-io/transport-node'
import { BENCH_DATA, freshEventplaneStream } from './bus-relay.ts'
import type { Tracker } from './bus-tracker.ts'
import { benchChild } from './lib.ts'

/** One append path and its receiving end; `send` calls `tracker.sending(id)` just before the write. */
export interface Pipeline {
  tracker: Tracker | undefined
  /** Appends `batch` events to one stream in one transaction. */
  send(tracker: Tracker, i: number, batch: number): Promise<void>
  stop(): Promise<void>
  /**
   * Split topology: each child's CPU and event loop delay since the last
   * call, after every trace it took so far reached this process.
   */
  childStats?(): Promise<ChildStats[]>
}

export interface ChildStats {
  /** 'relay', 'bare' (publishing children), 'subscriber' or 'watcher' (not counted as the pipeline's CPU). */
  role: string
  cpuMs: number
  loopP50: number
  loopP99: number
}

export interface PipelineSetup {
  /** Superuser pool on the bench database (DDL, checkpoint seed). */
  admin: Sql
  /** Superuser pool for the bare INSERTs. */
  rawSql: Sql
  /** Superuser pool whose LISTEN connection feeds the bare publisher. */
  listenSql: Sql
  /** eventplane_intent_writer pool for the appends. */
  writerSql: Sql
  /** eventplane_relay pool. */
  relaySql: Sql
  /** Publishing side (relay / bare publisher). */
  relayNc: NatsConnection
  /** Consuming side (subscribe() / bare consumer) and stream setup. */
  subNc: NatsConnection
  /** How the relay learns of appends: a NOTIFY after commit (default) or polling alone. */
  wake?: 'notify' | 'poll'
  /** Core subscriptions timing when messages reach the bus. */
  busNc: NatsConnection
  /**
   * `split` (default): the relay, and bare's LISTEN + publisher, each run in a
   * child process of their own (bus-pipeline-child.ts), as in production;
   * `shared`: everything in this process, on one event loop.
   */
  topology?: 'split' | 'shared'
  /**
   * Split topology: `child` runs each pipeline's subscriber (subscribe() / bare's pull consumer) in a
   * child process of its own too, away from the appenders; `parent` (default) keeps it here.
   */
  subscribers?: 'parent' | 'child'
  /** `child`: the core subscription timing when messages reach the bus in a child process of its own (both pipelines). */
  watcher?: 'parent' | 'child'
  /** Split topology: the NATS server's URL, the relay role's and the superuser's URLs of the bench database. */
  natsUrl?: string
  relayUrl?: string
  adminUrl?: string
}

/**
 * A publishing side in its own process (bus-pipeline-child.ts). Its traces
 * come back with absolute times (timeOrigin + now) and are published on this
 * process's diagnostics channels with this process's performance.now(), so
 * the bench's recorders work unchanged.
 */
class PipelineChild {
  readonly #child: ChildProcess
  readonly #waiting = new Map<number, (m: Record<string, unknown>) => void>()
  #next = 0
  readonly ready: Promise<void>
  readonly exited: Promise<void>
  onTrace: (name: string, payload: Record<string, unknown>) => void = () => {}

  readonly role: string

  constructor(env: Record<string, string>) {
    const role = env.EP_CHILD_ROLE!
    this.role = role.startsWith('sub') ? 'subscriber' : role
    // Stopped if the bench is interrupted; it also exits by itself when this process is gone (its IPC closes).
    this.#child = benchChild(
      fork(new URL('./bus-pipeline-child.ts', import.meta.url).pathname, {
        execArgv: ['--import', 'tsx'],
        env: { ...process.env, ...env },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    )
    this.exited = new Promise((resolve) => this.#child.once('exit', () => resolve()))
    this.ready = new Promise((resolve, reject) => {
      this.#child.on('message', (raw) => {
        const m = raw as Record<string, unknown> & { type: string }
        if (m.type === 'ready') resolve()
        else if (m.type === 'error') reject(new Error(`pipeline child failed: ${String(m.message)}`))
        else if (m.type === 'traces')
          for (const [name, payload] of m.items as [string, Record<string, unknown>][]) this.onTrace(name, payload)
        else if (typeof m.id === 'number') {
          this.#waiting.get(m.id)?.(m)
          this.#waiting.delete(m.id)
        }
      })
      this.exited.then(() => reject(new Error('pipeline child exited')))
    })
  }

  request(type: string): Promise<Record<string, unknown>> {
    const id = this.#next++
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve)
      this.#child.send({ type, id })
    })
  }

  async stats(): Promise<ChildStats> {
    const m = await this.request('stats')
    return { role: this.role, cpuMs: m.cpuMs as number, loopP50: m.loopP50 as number, loopP99: m.loopP99 as number }
  }

  /**
   * How far the child's clock (timeOrigin + now) is from this one's: the
   * child's answer must lie between the ping and the pong; returns the offset
   * from the midpoint and the round trip (ms), best of `n`.
   */
  async clockCheck(n = 20): Promise<{ offsetMs: number; rttMs: number }> {
    let best = { offsetMs: Number.NaN, rttMs: Number.POSITIVE_INFINITY }
    for (let i = 0; i < n; i++) {
      const t0 = performance.now()
      const m = await this.request('ping')
      const t1 = performance.now()
      const childAt = (m.at as number) - performance.timeOrigin
      if (t1 - t0 < best.rttMs) best = { offsetMs: childAt - (t0 + t1) / 2, rttMs: t1 - t0 }
    }
    return best
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.connected) this.#child.send({ type: 'stop' })
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 15_000)
    await this.exited
    clearTimeout(timer)
  }
}

/** An absolute time from a child (ms since the epoch) as this process's performance.now(). */
const local = (at: number): number => at - performance.timeOrigin

function startChild(env: Record<string, string>): PipelineChild {
  const child = new PipelineChild(env)
  child.ready.catch(() => {})
  return child
}

/** The bus watcher here (watchBus) or, with `watcher: 'child'`, in a process of its own. */
async function busWatch(
  o: PipelineSetup,
  subject: string,
  p: Pipeline,
): Promise<{ unsubscribe(): void; children: PipelineChild[] }> {
  if (o.watcher !== 'child') {
    const sub = watchBus(o.busNc, subject, p)
    return { unsubscribe: () => sub.unsubscribe(), children: [] }
  }
  const child = startChild({ EP_CHILD_ROLE: 'watcher', EP_CHILD_NATS_URL: o.natsUrl!, EP_CHILD_SUBJECT: subject })
  child.onTrace = (_name, payload) => {
    for (const id of payload.ids as string[]) p.tracker?.onBus(id, local(payload.at as number))
  }
  try {
    await child.ready
    await reportClock(child, 'watcher')
  } catch (e) {
    await child.stop()
    throw e
  }
  return { unsubscribe: () => void child.stop(), children: [child] }
}

/** A pipeline's subscriber in a process of its own: what it received comes back with absolute times. */
async function subscriberChild(o: PipelineSetup, role: 'sub-ours' | 'sub-bare', p: Pipeline): Promise<PipelineChild> {
  const child = startChild({ EP_CHILD_ROLE: role, EP_CHILD_NATS_URL: o.natsUrl! })
  child.onTrace = (name, payload) => {
    if (name === 'error') countError(p)
    else for (const id of payload.ids as string[]) p.tracker?.receive(id, local(payload.at as number))
  }
  try {
    await child.ready
    await reportClock(child, role)
  } catch (e) {
    await child.stop()
    throw e
  }
  return child
}

async function reportClock(child: PipelineChild, name: string): Promise<void> {
  const c = await child.clockCheck()
  process.stderr.write(
    `  ${name} child clock: offset ${c.offsetMs.toFixed(3)} ms (± ${(c.rttMs / 2).toFixed(3)}, best of 20 pings)\n`,
  )
}

const STREAM_IDS = 100

function countError(p: Pipeline): void {
  if (p.tracker !== undefined) p.tracker.errors++
}

/** A core NATS subscription on the pipeline's subjects: when each message reached the bus, by its Nats-Msg-Id. */
function watchBus(nc: NatsConnection, subject: string, p: Pipeline): NatsSubscription {
  return nc.subscribe(subject, {
    callback: (err, msg) => {
      const id = msg?.headers?.get('Nats-Msg-Id')
      if (err === null && id) p.tracker?.onBus(id)
    },
  })
}

/** Whether an earlier eventplanePipeline of this process made the stream its relay (and checkpoint) refer to. */
let latencyStreamMade = false

export async function eventplanePipeline(o: PipelineSetup): Promise<Pipeline> {
  const jsm = await jetstreamManager(o.subNc)
  // A later run (another rate) keeps the stream and the relay's checkpoint: its catch-up is short.
  if (!latencyStreamMade) await freshEventplaneStream(jsm)
  latencyStreamMade = true
  // --wake notify (default): appends notify after commit (AppendNotifier); --wake poll: no NOTIFY, the relay polls every 2 ms.
  const poll = o.wake === 'poll'
  let stopRelay: () => Promise<void>
  let child: PipelineChild | undefined
  let sub: Subscription | undefined
  const subInChild = o.topology !== 'shared' && o.subscribers === 'child'
  let subChild: PipelineChild | undefined
  if (o.topology !== 'shared') {
    // The relay in a process of its own; its traces are re-published here with this process's clock.
    child = startChild({
      EP_CHILD_ROLE: 'relay',
      EP_CHILD_PG_URL: o.relayUrl!,
      EP_CHILD_NATS_URL: o.natsUrl!,
      EP_CHILD_WAKE: poll ? 'poll' : 'notify',
    })
    child.onTrace = (name, payload) => {
      const ch = traceChannel(`eventplane:relay.${name}`)
      if (!ch.hasSubscribers) return
      const out: Record<string, unknown> = { ...payload, at: local(payload.at as number) }
      if (typeof payload.startedAt === 'number') out.startedAt = local(payload.startedAt)
      ch.publish(out)
    }
    const c = child
    stopRelay = () => c.stop()
    try {
      await child.ready
      await reportClock(child, 'relay')
      while ((await countEventsAfter(o.admin, await loadRelayCheckpoint(o.admin, 'bench_latency'))) > 0) await sleep(5)
      await ensureConsumer(jsm, { name: 'bench_latency', filter: { kind: 'intent', tenant: 'benchlat' } })
      sub = subInChild ? undefined : await subscribe(jetstream(o.subNc), { consumer: 'bench_latency' })
    } catch (e) {
      await child.stop()
      throw e
    }
  } else {
    const relay = new Relay({
      sql: o.relaySql,
      nc: o.relayNc,
      name: 'bench_latency',
      ...(poll ? { wakePollMs: 2 } : {}),
    })
    relay.start()
    stopRelay = () => relay.stop()
    try {
      // Catch up first (part 1 left the log full; the stream is fresh), so the measurement sees a relay at the head.
      while (relay.state !== 'active' || (await countEventsAfter(o.admin, relay.checkpoint ?? START)) > 0) {
        if (relay.state === 'stopped')
          throw new Error('the latency relay stopped', { cause: await relay.closed.catch((e: unknown) => e) })
        await sleep(5)
      }
      await ensureConsumer(jsm, { name: 'bench_latency', filter: { kind: 'intent', tenant: 'benchlat' } })
      sub = subInChild ? undefined : await subscribe(jetstream(o.subNc), { consumer: 'bench_latency' })
    } catch (e) {
      await relay.stop()
      throw e
    }
  }
  const store = new PgEventStore(o.writerSql, {
    notifyAppends: !poll,
    // BENCH_NOTIFY_IN_FLIGHT=N pnpm bench:bus: the notifier's NOTIFYs in flight at once, for an A/B.
    ...(process.env.BENCH_NOTIFY_IN_FLIGHT ? { notifyInFlight: Number(process.env.BENCH_NOTIFY_IN_FLIGHT) } : {}),
  })
  const factory = EventFactory.forTenant('benchlat', { causedBy: 'user:bench' })
  const pipeline: Pipeline = {
    tracker: undefined,
    async send(tracker, i, batch) {
      const stream = { tenant: 'benchlat', category: 'deployment', id: `l${i % STREAM_IDS}` }
      const events = Array.from({ length: batch }, () => factory.intent(stream, 'scaled', BENCH_DATA))
      for (const e of events) tracker.sending(e.event_id)
      try {
        await store.append(stream, events)
        for (const e of events) tracker.appended(e.event_id)
      } catch {
        tracker.errors++
      }
    },
    async stop() {
      bus.unsubscribe()
      offChannel(RELAY_TRACE.sent.name, onSent)
      await sub?.stop()
      await subChild?.stop()
      await stopRelay()
    },
    ...(child
      ? {
          childStats: () =>
            Promise.all([child, ...(subChild ? [subChild] : []), ...bus.children].map((c) => c.stats())),
        }
      : {}),
  }
  // The relay's publishes, for the publish → bus hop (the trace comes after the whole read was handed over).
  const onSent = (message: unknown): void => {
    const { at, ids } = message as { at: number; ids: string[] }
    for (const id of ids) pipeline.tracker?.published(id, at)
  }
  onChannel(RELAY_TRACE.sent.name, onSent)
  const bus = await busWatch(o, 'eventplane.intent.benchlat.>', pipeline)
  if (sub !== undefined) {
    const s = sub
    void (async () => {
      for await (const delivery of s) {
        const at = performance.now()
        pipeline.tracker?.receive(delivery.event.event_id, at)
        delivery.ack().catch(() => countError(pipeline))
      }
    })()
  } else {
    subChild = await subscriberChild(o, 'sub-ours', pipeline).catch(async (e: unknown) => {
      await pipeline.stop()
      throw e
    })
  }
  return pipeline
}

const RAW_STREAM = 'BENCH_RAW'
const RAW_CHANNEL = 'bench_raw_events'

export async function barePipeline(o: PipelineSetup): Promise<Pipeline> {
  await o.admin.unsafe(`
    drop table if exists bench_raw_events;
    create table bench_raw_events (
      id bigint generated always as identity primary key, event_id uuid not null unique, tenant_id text not null,
      category text not null, stream_id text not null, type text not null, data jsonb not null,
      recorded_at timestamptz not null default now());
    create or replace function bench_raw_notify() returns trigger language plpgsql as $$
    begin
      perform pg_notify('${RAW_CHANNEL}', row_to_json(new)::text);
      return null;
    end $$;
    create trigger bench_raw_notify after insert on bench_raw_events for each row execute function bench_raw_notify();`)
  const jsm = await jetstreamManager(o.subNc)
  await jsm.streams.delete(RAW_STREAM).catch(() => {}) // left by an earlier run (another rate)
  await jsm.streams.add({
    name: RAW_STREAM,
    subjects: ['benchraw.>'],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    duplicate_window: nanos(2 * 60 * 1000),
  })
  await jsm.consumers.add(RAW_STREAM, {
    durable_name: 'bench_raw',
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: 'benchraw.>',
  })
  const pubJs = jetstream(o.relayNc)
  const encoder = new TextEncoder()
  const decoder = new TextDecoder()
  const subInChild = o.topology !== 'shared' && o.subscribers === 'child'
  const consumer = await jetstream(o.subNc).consumers.get(RAW_STREAM, 'bench_raw')
  const messages: ConsumerMessages | undefined = subInChild ? undefined : await consumer.consume({ max_messages: 100 })
  let subChild: PipelineChild | undefined
  let unlisten: (() => Promise<void>) | undefined
  const pipeline: Pipeline = {
    tracker: undefined,
    async send(t, i, batch) {
      const ids = Array.from({ length: batch }, () => randomUUID())
      for (const id of ids) t.sending(id)
      try {
        await o.rawSql`insert into bench_raw_events (event_id, tenant_id, category, stream_id, type, data)
          select u.id, 'benchlat', 'deployment', ${`l${i % STREAM_IDS}`}, 'scaled', ${o.rawSql.json(BENCH_DATA)}
            from unnest(${ids}::uuid[]) as u(id)`
        for (const id of ids) t.appended(id)
      } catch {
        t.errors++
      }
    },
    async stop() {
      bus.unsubscribe()
      messages?.stop()
      await subChild?.stop()
      await unlisten?.()
    },
  }
  const bus = await busWatch(o, 'benchraw.>', pipeline)
  if (o.topology !== 'shared') {
    // LISTEN + js.publish in a process of its own, like the relay.
    const child = startChild({
      EP_CHILD_ROLE: 'bare',
      EP_CHILD_PG_URL: o.adminUrl!,
      EP_CHILD_NATS_URL: o.natsUrl!,
      EP_CHILD_CHANNEL: RAW_CHANNEL,
    })
    child.onTrace = (name, payload) => {
      if (name === 'error') countError(pipeline)
      else for (const id of payload.ids as string[]) pipeline.tracker?.published(id, local(payload.at as number))
    }
    unlisten = () => child.stop()
    pipeline.childStats = () =>
      Promise.all([child, ...(subChild ? [subChild] : []), ...bus.children].map((c) => c.stats()))
    try {
      await child.ready
      await reportClock(child, 'bare')
    } catch (e) {
      await child.stop()
      bus.unsubscribe()
      messages?.stop()
      throw e
    }
  } else {
    const listening = await o.listenSql.listen(RAW_CHANNEL, (payload) => {
      const row = JSON.parse(payload) as { event_id: string; tenant_id: string; category: string; stream_id: string }
      pipeline.tracker?.published(row.event_id)
      pubJs
        .publish(`benchraw.${row.tenant_id}.${row.category}.${row.stream_id}`, encoder.encode(payload), {
          msgID: row.event_id,
        })
        .catch(() => countError(pipeline))
    })
    unlisten = () => listening.unlisten()
  }
  if (messages !== undefined) {
    const m = messages
    void (async () => {
      for await (const msg of m) {
        const at = performance.now()
        const { event_id } = JSON.parse(decoder.decode(msg.data)) as { event_id: string }
        pipeline.tracker?.receive(event_id, at)
        msg.ack()
      }
    })()
  } else {
    subChild = await subscriberChild(o, 'sub-bare', pipeline).catch(async (e: unknown) => {
      await pipeline.stop()
      throw e
    })
  }
  return pipeline
}
