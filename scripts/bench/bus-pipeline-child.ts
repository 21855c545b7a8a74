/**
 * The publishing side of one bench:bus latency pipeline in a process of its
 * own, as production runs it (`--topology split`, the default; see
 * bus-pipelines.ts): eventplane's Relay (`EP_CHILD_ROLE=relay`, connected as
 * eventplane_relay) or the bare pipeline's LISTEN + `js.publish`
 * (`EP_CHILD_ROLE=bare`, superuser). The appenders, the subscribers and the
 * bus watcher stay in the parent, the same for both.
 *
 * One clock for both processes: every timestamp sent to the parent is
 * `performance.timeOrigin + performance.now()` (ms since the epoch, sub-ms),
 * which the parent turns back into its own `performance.now()` by
 * subtracting its `timeOrigin`. Both origins are read from the same system
 * clock at process start; the parent checks the agreement at start with a
 * ping (`clock` message) and prints it.
 *
 * IPC (`process.send`), parent → child: `{ type: 'stats', id }` (flush the
 * traces, then answer with this process's CPU and event loop delay since the
 * last `stats`), `{ type: 'ping', id }`, `{ type: 'stop' }`. Child → parent:
 * `ready`, `traces` (batched every 50 ms: `[channel, payload]` with absolute
 * times), `stats`, `pong`, `error`.
 */
import { subscribe as onChannel } from 'node:diagnostics_channel'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { START } from '@eventplane/core'
import { connectPg, countEventsAfter, loadRelayCheckpoint } from '@eventplane/store-pg'
import { RELAY_TRACE, Relay, subscribe } from '@eventplane/bus-nats'
import { jetstream } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'

const role = process.env.EP_CHILD_ROLE
const pgUrl = process.env.EP_CHILD_PG_URL!
const natsUrl = process.env.EP_CHILD_NATS_URL!
const send = (m: unknown): void => {
  process.send?.(m)
}
const abs = (t: number): number => performance.timeOrigin + t

const queue: [string, unknown][] = []
function flush(): void {
  if (queue.length === 0) return
  send({ type: 'traces', items: queue.splice(0) })
}
const flusher = setInterval(flush, 50)

const loop = monitorEventLoopDelay({ resolution: 1 })
loop.enable()
let cpuBase = process.cpuUsage()

let stop: () => Promise<void> = async () => {}
/** Set once the parent asked this process to stop, or it failed: its own `disconnect` is then expected. */
let ending = false
// The parent gone without a `stop` (interrupted, killed): nobody is left to report to, and the relay or
// subscriber must not run on as an orphan.
process.once('disconnect', () => {
  if (!ending) process.exit(1)
})

process.on('message', (raw) => {
  const m = raw as { type: string; id?: number }
  if (m.type === 'stats') {
    flush()
    const used = process.cpuUsage(cpuBase)
    cpuBase = process.cpuUsage()
    send({
      type: 'stats',
      id: m.id,
      cpuMs: (used.user + used.system) / 1000,
      loopP50: loop.percentile(50) / 1e6,
      loopP99: loop.percentile(99) / 1e6,
    })
    loop.reset()
  } else if (m.type === 'ping') send({ type: 'pong', id: m.id, at: abs(performance.now()) })
  else if (m.type === 'stop') {
    ending = true
    void stop().finally(() => {
      flush()
      clearInterval(flusher)
      process.disconnect?.()
    })
  }
})

async function relayRole(): Promise<void> {
  const sql = connectPg(pgUrl, { max: 4 })
  const nc = await connect({ servers: natsUrl, name: 'bench-relay-child' })
  for (const [name, ch] of Object.entries(RELAY_TRACE)) {
    onChannel(ch.name, (msg) => {
      const t = msg as { at: number; startedAt?: number }
      const out: Record<string, unknown> = { ...t, at: abs(t.at) }
      if (t.startedAt !== undefined) out.startedAt = abs(t.startedAt)
      queue.push([name, out])
    })
  }
  const relay = new Relay({
    sql,
    nc,
    name: 'bench_latency',
    ...(process.env.EP_CHILD_WAKE === 'poll' ? { wakePollMs: 2 } : {}),
  })
  relay.start()
  stop = async () => {
    await relay.stop()
    await nc.close()
    await sql.end()
  }
  // Caught up (part 1 left the log full; the stream is fresh) before the parent measures.
  while (relay.state !== 'active' || (await countEventsAfter(sql, relay.checkpoint ?? START)) > 0) {
    if (relay.state === 'stopped') throw new Error('the latency relay stopped')
    await sleep(5)
  }
  // The stored checkpoint too, so the parent's view agrees.
  while ((await countEventsAfter(sql, await loadRelayCheckpoint(sql, 'bench_latency'))) > 0) await sleep(5)
  send({ type: 'ready' })
}

/** A pipeline's subscriber: eventplane's subscribe() or bare's pull consumer, each delivery's receive time sent back. */
async function subscriberRole(ours: boolean): Promise<void> {
  const nc = await connect({ servers: natsUrl, name: `bench-${role}-child` })
  const received = (id: string): void => {
    queue.push(['received', { at: abs(performance.now()), ids: [id] }])
  }
  let done: () => void = () => {}
  if (ours) {
    const sub = await subscribe(jetstream(nc), { consumer: 'bench_latency' })
    void (async () => {
      for await (const delivery of sub) {
        received(delivery.event.event_id)
        delivery.ack().catch(() => queue.push(['error', {}]))
      }
    })()
    done = () => void sub.stop()
  } else {
    const decoder = new TextDecoder()
    const messages = await (await jetstream(nc).consumers.get('BENCH_RAW', 'bench_raw')).consume({ max_messages: 100 })
    void (async () => {
      for await (const msg of messages) {
        received((JSON.parse(decoder.decode(msg.data)) as { event_id: string }).event_id)
        msg.ack()
      }
    })()
    done = () => messages.stop()
  }
  stop = async () => {
    done()
    await nc.close()
  }
  send({ type: 'ready' })
}

/** The bus watcher: a core subscription on the pipeline's subjects, when each message reached the bus. */
async function watcherRole(): Promise<void> {
  const nc = await connect({ servers: natsUrl, name: 'bench-watcher-child' })
  const sub = nc.subscribe(process.env.EP_CHILD_SUBJECT!, {
    callback: (err, msg) => {
      const id = msg?.headers?.get('Nats-Msg-Id')
      if (err === null && id) queue.push(['bus', { at: abs(performance.now()), ids: [id] }])
    },
  })
  await nc.flush()
  stop = async () => {
    sub.unsubscribe()
    await nc.close()
  }
  send({ type: 'ready' })
}

async function bareRole(): Promise<void> {
  const sql = connectPg(pgUrl, { max: 1 })
  const nc = await connect({ servers: natsUrl, name: 'bench-bare-child' })
  const pubJs = jetstream(nc)
  const encoder = new TextEncoder()
  const listening = await sql.listen(process.env.EP_CHILD_CHANNEL!, (payload) => {
    const row = JSON.parse(payload) as { event_id: string; tenant_id: string; category: string; stream_id: string }
    queue.push(['published', { at: abs(performance.now()), ids: [row.event_id] }])
    pubJs
      .publish(`benchraw.${row.tenant_id}.${row.category}.${row.stream_id}`, encoder.encode(payload), {
        msgID: row.event_id,
      })
      .catch(() => queue.push(['error', {}]))
  })
  stop = async () => {
    await listening.unlisten()
    await nc.close()
    await sql.end()
  }
  send({ type: 'ready' })
}

;(role === 'relay'
  ? relayRole()
  : role === 'bare'
    ? bareRole()
    : role === 'watcher'
      ? watcherRole()
      : subscriberRole(role === 'sub-ours')
).catch((e: unknown) => {
  send({ type: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) })
  ending = true
  process.exitCode = 1
  clearInterval(flusher)
  process.disconnect?.()
})
