import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { type EventEnvelope, type RecordedEvent, EventFactory } from '@eventplane/core'
import type { PgEventStore } from '@eventplane/store-pg'
import {
  createTestDatabase,
  eventually as eventuallyWithin,
  perSuite,
  type TestDatabase,
  within,
} from '@eventplane/store-pg/testing'
import { type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream'
import { type MsgHdrs, type NatsConnection, type Subscription, connect } from '@nats-io/transport-node'
import { EVENT_HEADERS, decodeEvent } from '../src/codec.ts'
import { natsAuth } from '../src/nats-auth.ts'
import { STREAM_NAME } from '../src/subjects.ts'
import {
  OWN_PROCESS_GROUP,
  dieWithParent,
  reapOnExit,
  startNatsServer,
  type TestNatsServer,
} from '../src/testing/index.ts'
import { createBusEnv, type BusEnv } from '../src/testing/bus-env.ts'

export { type BusEnv, createBusEnv } from '../src/testing/bus-env.ts'
export { within }

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))

/** Polls `fn` until it is true; fails after `timeoutMs` (PG's gap-safe read may be held back by other tests' transactions). */
export function eventually(fn: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000): Promise<void> {
  return eventuallyWithin(fn, timeoutMs, what)
}

/**
 * Every event id the bus carries from now on (a core subscription to the log's subjects on `nc`, read from the
 * headers): `ids` as a set, `arrived` in the order they came, a repeat listed again.
 */
export async function watchEventIds(
  nc: NatsConnection,
): Promise<{ ids: Set<string>; arrived: string[]; sub: Subscription }> {
  const ids = new Set<string>()
  const arrived: string[] = []
  const sub = nc.subscribe('eventplane.>', {
    callback: (_err, msg) => {
      const id = msg.headers?.get(EVENT_HEADERS.msgId)
      if (!id) return
      ids.add(id)
      arrived.push(id)
    },
  })
  await nc.flush()
  return { ids, arrived, sub }
}

/** A relay's bench for the enclosing `describe` (see {@link useWatchedBus}). */
export interface WatchedBus {
  /** A migrated database of its own. */
  db: TestDatabase
  /** A nats-server without auth. */
  nats: TestNatsServer
  /** A connection for the relay under test. */
  nc: NatsConnection
  /** Every event id published on the log's subjects, seen by a watcher on a connection of its own. */
  received: Set<string>
}

/**
 * A migrated database, a nats-server without auth, a connection for a relay and a watcher collecting the event
 * ids published ({@link watchEventIds}), made before the enclosing `describe`'s tests and removed after them.
 * Call it first in the `describe`, so its `before` runs before the suite's own.
 */
export function useWatchedBus(prefix: string): WatchedBus {
  return perSuite(
    async () => {
      const db = await createTestDatabase(prefix)
      let nats: TestNatsServer | undefined
      try {
        nats = await startNatsServer({ withAuth: false })
        const nc = await nats.connect()
        const { ids, sub } = await watchEventIds(await nats.connect())
        return { db, nats, nc, received: ids, sub }
      } catch (e) {
        await nats?.stop()
        await db.drop()
        throw e
      }
    },
    async ({ db, nats, sub }) => {
      sub.unsubscribe()
      await nats.stop()
      await db.drop()
    },
  )
}

export interface StoredMessage {
  seq: number
  subject: string
  headers: MsgHdrs | undefined
  event: RecordedEvent
}

/** Every message of the EVENTPLANE stream, in stream order (read with an ordered consumer). */
export async function streamMessages(nc: NatsConnection): Promise<StoredMessage[]> {
  const jsm = await jetstreamManager(nc)
  const total = await streamCount(jsm)
  if (total === 0) return []
  const consumer = await jetstream(nc).consumers.get(STREAM_NAME)
  const out: StoredMessage[] = []
  const deadline = Date.now() + 20_000
  while (out.length < total) {
    if (Date.now() > deadline) throw new Error(`read ${out.length} of ${total} stream messages in time`)
    const batch = await consumer.fetch({ max_messages: Math.min(500, total - out.length), expires: 2000 })
    for await (const m of batch)
      out.push({ seq: m.seq, subject: m.subject, headers: m.headers, event: decodeEvent(m.data) })
  }
  return out
}

export async function streamCount(jsm: JetStreamManager): Promise<number> {
  try {
    return (await jsm.streams.info(STREAM_NAME)).state.messages
  } catch {
    return 0
  }
}

/**
 * Every committed event of the log in the global order `(tx_id, global_position)`,
 * read with a plain query of its own through `store`'s pool (a cross-tenant
 * role) and mapped here: an oracle independent of `readAll`, the code the
 * relay itself reads with.
 */
export async function pgLog(store: PgEventStore): Promise<RecordedEvent[]> {
  const rows = await store.sql<
    {
      event_id: string
      tenant_id: string
      kind: RecordedEvent['kind']
      category: string
      stream_id: string
      type: string
      schema_version: number
      data: RecordedEvent['data']
      correlation_id: string
      causation_id: string | null
      caused_by: string
      occurred_at: Date
      stream_version: string
      global_position: string
      tx_id: string
      recorded_at: Date
    }[]
  >`select event_id, tenant_id, kind, category, stream_id, type, schema_version, data, correlation_id,
           causation_id, caused_by, occurred_at, stream_version::text, global_position::text, tx_id::text, recorded_at
      from eventplane.events e order by e.tx_id, e.global_position`
  return rows.map((r) => ({
    event_id: r.event_id,
    tenant_id: r.tenant_id,
    kind: r.kind,
    stream: { category: r.category, id: r.stream_id },
    type: r.type,
    schema_version: r.schema_version,
    data: r.data,
    correlation_id: r.correlation_id,
    causation_id: r.causation_id,
    caused_by: r.caused_by,
    occurred_at: r.occurred_at.toISOString(),
    stream_version: Number(r.stream_version),
    global_position: BigInt(r.global_position),
    tx_id: BigInt(r.tx_id),
    recorded_at: r.recorded_at.toISOString(),
  }))
}

/** A {@link createBusEnv} for the enclosing `describe`: made before its tests, cleaned up after them. */
export function useBusEnv(prefix: string, tenants?: string[]): BusEnv {
  return perSuite(
    () => createBusEnv(prefix, tenants),
    (env) => env.cleanup(),
  )
}

/** Appends `count` intents for `tenant` in appends of `perAppend` events, on streams `<prefix>-0..`. */
export async function appendIntents(
  store: PgEventStore,
  tenant: string,
  count: number,
  perAppend = 50,
  prefix = 's',
): Promise<EventEnvelope[]> {
  const f = EventFactory.forTenant(tenant, { causedBy: 'user:test' })
  const all: EventEnvelope[] = []
  for (let i = 0; i < count; i += perAppend) {
    const stream = { tenant, category: 'deployment', id: `${prefix}-${i / perAppend}` }
    const events = Array.from({ length: Math.min(perAppend, count - i) }, (_, j) =>
      f.intent(stream, 'scaled', { n: i + j }),
    )
    await store.append(stream, events)
    all.push(...events)
  }
  return all
}

/** A service (relay, gateway, a load client) running as a child process, so a test can SIGKILL it. */
export interface ServiceProcess {
  process: ChildProcess
  /** Parsed JSON log lines so far. */
  logs: Array<{ msg?: string; [key: string]: unknown }>
  waitForLog(msg: string, timeoutMs?: number): Promise<void>
  hasLogged(msg: string): boolean
  /** Sends `signal` (default SIGKILL) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>
  /** Freezes (SIGSTOP) or thaws (SIGCONT) the process, to look at its state while it cannot change it. */
  freeze(frozen: boolean): void
}

/**
 * Spawns `bin` (a script, through tsx if it is TypeScript, with `args`) with `env` only (plus
 * PATH) in a process group of its own, collects the JSON log lines it writes
 * on `logStream` (stdout by default), and SIGKILLs it if the test process
 * exits (or gets SIGINT/SIGTERM) first; the kernel kills it if the test process is SIGKILLed (dieWithParent). `label` names it
 * in timeouts and failures.
 */
export function spawnServiceProcess(
  bin: string,
  label: string,
  env: Record<string, string>,
  options: { args?: readonly string[]; logStream?: 'stdout' | 'stderr' } = {},
): ServiceProcess {
  // tsx only for a TypeScript file: a JavaScript bin (the suite's evtctl bundle) runs on plain node.
  const loader = /\.[cm]?tsx?$/.test(bin) ? ['--import', 'tsx'] : []
  const child = spawn(...dieWithParent(process.execPath, [...loader, bin, ...(options.args ?? [])]), {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, ...env },
    // `freeze` SIGSTOPs it: in a process group of its own, so a frozen child cannot get the test runner's group hung up.
    ...OWN_PROCESS_GROUP,
  })
  reapOnExit(child)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const logs: ServiceProcess['logs'] = []
  let buffered = ''
  const logStream = options.logStream === 'stderr' ? child.stderr! : child.stdout!
  logStream.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8')
    const lines = buffered.split('\n')
    buffered = lines.pop() ?? ''
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line))
      } catch {
        logs.push({ msg: line })
      }
    }
  })
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-2000)))
  const hasLogged = (msg: string): boolean => logs.some((l) => l.msg === msg)
  const running = (): boolean => child.exitCode === null && child.signalCode === null
  return {
    process: child,
    logs,
    hasLogged,
    async waitForLog(msg, timeoutMs = 20_000) {
      await eventually(
        () => {
          if (child.exitCode !== null && !hasLogged(msg))
            throw new Error(`${label} exited (${child.exitCode}) before logging "${msg}": ${stderr}`)
          return hasLogged(msg)
        },
        `${label} to log "${msg}"`,
        timeoutMs,
      )
    },
    freeze(frozen) {
      if (running()) child.kill(frozen ? 'SIGSTOP' : 'SIGCONT')
    },
    async kill(signal = 'SIGKILL') {
      if (running()) child.kill(signal)
      await within(exited, 10_000, `${label} to exit`)
    },
  }
}

/**
 * A connection as a service makes it: reading the creds `file` on each (re)connect (natsAuth), reconnecting for
 * ever every 50 ms; `statuses` records its status events but pings, for a test to see it reconnect.
 */
export async function serviceConnection(
  url: string,
  file: string,
): Promise<{ nc: NatsConnection; statuses: string[] }> {
  const nc = await connect({
    servers: url,
    ...natsAuth({ natsCreds: file }),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 50,
  })
  const statuses: string[] = []
  void (async () => {
    for await (const s of nc.status()) if (s.type !== 'ping') statuses.push(s.type)
  })()
  return { nc, statuses }
}
