/**
 * The two append → subscriber paths bench:bus times (see bus-latency.ts):
 * eventplane's (append, Relay, subscribe()) and a bare one.
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Sql } from 'postgres'
import { EventFactory, START } from '@eventplane/core'
import { PgEventStore, countEventsAfter } from '@eventplane/store-pg'
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

/** One append path and its receiving end; `send` calls `tracker.sending(id)` just before the write. */
export interface Pipeline {
  tracker: Tracker | undefined
  /** Appends `batch` events to one stream in one transaction. */
  send(tracker: Tracker, i: number, batch: number): Promise<void>
  stop(): Promise<void>
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
  const relay = new Relay({
    sql: o.relaySql,
    nc: o.relayNc,
    name: 'bench_latency',
    ...(poll ? { wakePollMs: 2 } : {}),
  })
  relay.start()
  let sub: Subscription
  try {
    // Catch up first (part 1 left the log full; the stream is fresh), so the measurement sees a relay at the head.
    while (relay.state !== 'active' || (await countEventsAfter(o.admin, relay.checkpoint ?? START)) > 0) {
      if (relay.state === 'stopped')
        throw new Error('the latency relay stopped', { cause: await relay.closed.catch((e: unknown) => e) })
      await sleep(5)
    }
    await ensureConsumer(jsm, { name: 'bench_latency', filter: { kind: 'intent', tenant: 'benchlat' } })
    sub = await subscribe(jetstream(o.subNc), { consumer: 'bench_latency' })
  } catch (e) {
    await relay.stop()
    throw e
  }
  const store = new PgEventStore(o.writerSql, { notifyAppends: !poll })
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
      await sub.stop()
      await relay.stop()
    },
  }
  // The relay's publishes, for the publish → bus hop (the trace comes after the whole read was handed over).
  const onSent = (message: unknown): void => {
    const { at, ids } = message as { at: number; ids: string[] }
    for (const id of ids) pipeline.tracker?.published(id, at)
  }
  onChannel(RELAY_TRACE.sent.name, onSent)
  const bus = watchBus(o.busNc, 'eventplane.intent.benchlat.>', pipeline)
  void (async () => {
    for await (const delivery of sub) {
      const at = performance.now()
      pipeline.tracker?.receive(delivery.event.event_id, at)
      delivery.ack().catch(() => countError(pipeline))
    }
  })()
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
  const consumer = await jetstream(o.subNc).consumers.get(RAW_STREAM, 'bench_raw')
  const messages: ConsumerMessages = await consumer.consume({ max_messages: 100 })
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
      messages.stop()
      await unlisten?.()
    },
  }
  const bus = watchBus(o.busNc, 'benchraw.>', pipeline)
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
  void (async () => {
    for await (const msg of messages) {
      const at = performance.now()
      const { event_id } = JSON.parse(decoder.decode(msg.data)) as { event_id: string }
      pipeline.tracker?.receive(event_id, at)
      msg.ack()
    }
  })()
  return pipeline
}
