import assert from 'node:assert/strict'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { after, before, describe, test } from 'node:test'
import { EventFactory } from '@eventplane/core'
import {
  type AppendedEvent,
  PgEventStore,
  ROLES,
  type ReservedSql,
  type Sql,
  loadRelayCheckpoint,
} from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import type { NatsConnection } from '@nats-io/transport-node'
import type { Logger } from '../src/logger.ts'
import { Relay, type RelayState } from '../src/relay.ts'
import { RELAY_TRACE } from '../src/relay-trace.ts'
import { StopWaits } from '../src/server-wait.ts'
import { settlesWithin } from '../src/settles-within.ts'
import { unlessAborted } from '../src/unless-aborted.ts'
import { startNatsServer, startRequestGate, type TestNatsServer } from '../src/testing/index.ts'
import { eventually, pgLog, streamMessages, within } from './fixtures.ts'

const STOP_DRAIN_MS = 300
/**
 * The relay's own bounds on a JetStream API request and on a statement of its lease session, far past the test's
 * wait for stop(): without the stop's bounds, a held reply or a held lock keeps stop() up for a minute, and the
 * test fails at STOP_WAIT_MS. With them it resolves after STOP_DRAIN_MS + RELAY_STOP_GRACE_MS at most.
 */
const RELAY_TIMEOUT_MS = 60_000
const STOP_WAIT_MS = 15_000

/** The relay's warnings (it logs ids, counts and positions, never data). */
class Warnings implements Logger {
  readonly seen: Array<{ msg: string; err?: string; checkpoint?: string; stored?: string }> = []
  debug(): void {}
  info(): void {}
  error(obj: object, msg = ''): void {
    this.warn(obj, msg)
  }
  warn(obj: object, msg = ''): void {
    this.seen.push({ msg, ...(obj as object) })
  }
  get messages(): string[] {
    return this.seen.map((w) => w.msg)
  }
}

/** A transaction of `admin` holding what `lock` takes until `release()` rolls it back. */
async function holdLock(
  admin: Sql,
  lock: (tx: ReservedSql) => Promise<unknown>,
): Promise<{ also(more: (tx: ReservedSql) => Promise<unknown>): Promise<unknown>; release(): Promise<void> }> {
  const tx = await admin.reserve()
  await tx`begin`
  await lock(tx)
  let released = false
  return {
    also: (more) => more(tx),
    async release() {
      if (released) return
      released = true
      await tx`rollback`
      tx.release()
    },
  }
}

// stop() is bounded whatever NATS or PostgreSQL are doing: a JetStream API reply held by a proxy, a lock the
// checkpoint write or the lease release waits for, held by a transaction of the test. Each test holds its
// obstacle until stop() has resolved: "resolved while held" is the bound, without timing anything. What a user
// then sees: the stream holds every event of the log once, in log order, and a later relay goes on from there.
describe('relay stop: every step bounded', () => {
  let db: TestDatabase
  let nats: TestNatsServer
  let nc: NatsConnection
  let quiet: PgEventStore
  let loud: PgEventStore
  let relayStore: PgEventStore
  const f = EventFactory.forTenant('acme', { causedBy: 'user:test' })

  /** Two events in a stream of their own, committed without a NOTIFY: only a drain that looks finds them. */
  const appendQuietly = async (id: string, store = quiet): Promise<AppendedEvent[]> => {
    const s = { tenant: 'acme', category: 'deployment', id }
    return (await store.append(s, [f.intent(s, 'scaled', { n: 1 }), f.intent(s, 'scaled', { n: 2 })])).events
  }
  const newRelay = (
    name: string,
    nc_: NatsConnection,
    logger?: Logger,
    more: Partial<{ lockRetryMs: number; pollIntervalMs: number }> = {},
  ) =>
    new Relay({
      sql: db.connect(ROLES.relay, 3),
      nc: nc_,
      name,
      pollIntervalMs: 60_000,
      stopDrainMs: STOP_DRAIN_MS,
      apiTimeoutMs: RELAY_TIMEOUT_MS,
      leaseTimeoutMs: RELAY_TIMEOUT_MS,
      ...more,
      ...(logger ? { logger } : {}),
    })
  /** Starts `relay` and waits for its first drain: after it, it reads the log again only when notified or stopped. */
  const activate = async (relay: Relay): Promise<Relay> => {
    let drains = 0
    const onDrain = () => drains++
    subscribe(RELAY_TRACE.drain.name, onDrain)
    try {
      relay.start()
      await eventually(() => relay.state === 'active' && drains > 0, `relay ${relay.name}'s first drain`)
      return relay
    } finally {
      unsubscribe(RELAY_TRACE.drain.name, onDrain)
    }
  }
  /** The stream holds every event of the log once, in log order (what the relays of this file published). */
  const streamIsTheLog = async (what: string): Promise<void> => {
    const log = (await pgLog(relayStore)).map((e) => e.event_id)
    await eventually(async () => (await streamMessages(nc)).length >= log.length, `${what}: the log in the stream`)
    assert.deepEqual(
      (await streamMessages(nc)).map((m) => m.event.event_id),
      log,
      `${what}: each event once, in order`,
    )
  }
  /** A new relay of `name` publishes what the stopped one left: the stream is then the log (see streamIsTheLog). */
  const nextRelayPublishesTheRest = async (name: string): Promise<void> => {
    const next = await activate(newRelay(name, nc))
    try {
      await streamIsTheLog('after the next relay')
    } finally {
      await within(next.stop(), STOP_WAIT_MS, 'the next relay to stop')
    }
  }
  /** Backends of the relay role waiting for a lock while running a statement that contains `text`. */
  const waitingOn = async (text: string): Promise<number> =>
    (
      await db.admin`select 1 from pg_stat_activity
        where datname = ${db.name} and usename = ${ROLES.relay} and wait_event_type = 'Lock'
          and strpos(query, ${text}) > 0`
    ).length
  const alive = async (pid: number): Promise<boolean> =>
    (await db.admin`select 1 from pg_stat_activity where pid = ${pid}`).length > 0
  const leaseHolder = async (name: string): Promise<number | null> =>
    (
      await db.admin<
        { pid: number | null }[]
      >`select holder_pid as pid from eventplane.relay_leases where name = ${name}`
    )[0]?.pid ?? null

  before(async () => {
    db = await createTestDatabase('ep_relay_stop_bounds')
    nats = await startNatsServer({ withAuth: false })
    nc = await nats.connect()
    quiet = new PgEventStore(db.connect(ROLES.intentWriter, 2), { notifyAppends: false })
    loud = new PgEventStore(db.connect(ROLES.intentWriter, 2))
    relayStore = new PgEventStore(db.connect(ROLES.relay, 2))
  })
  after(async () => {
    await nats?.stop()
    await db?.drop()
  })

  // (a) The relay reaches NATS through a proxy that holds the server's replies to one kind of JetStream API
  // request: the server answered, the relay never hears of it. The first case holds the stream check of the
  // start (the stream does not exist yet: it is created, and the relay is not told); the second (after the
  // first: the stream holds messages then) the resume's read of its last message.
  const held = [
    { what: 'the stream check at start', prefix: '$JS.API.STREAM.INFO.', name: 'held-info' },
    { what: "the resume's read of the stream's last message", prefix: '$JS.API.STREAM.MSG.GET.', name: 'held-get' },
  ]
  for (const { what, prefix, name } of held) {
    test(`stop() resolves while ${what} is held (${prefix}…); the next relay publishes everything once`, async () => {
      await appendQuietly(name)
      const gate = await startRequestGate(nats.port, prefix)
      const gated = await nats.connect('operator', { servers: gate.url, maxReconnectAttempts: 0 })
      const warnings = new Warnings()
      const relay = newRelay(name, gated, warnings)
      try {
        relay.start()
        await within(gate.held, 20_000, `the relay's ${prefix} request, held`)
        assert.equal(relay.state, 'starting' satisfies RelayState)
        // As one of a process's stop's waits: the request the server did not answer marks that stop stalled.
        const waits = new StopWaits()
        await within(relay.stop(waits), STOP_WAIT_MS, 'stop() to resolve while the reply is held')
        assert.ok(gate.holding, 'the reply is still held: stop() did not wait for it')
        assert.ok(waits.isStalled, "the request unanswered at the stop's deadline did not mark the stop stalled")
        assert.equal(relay.state, 'stopped')
        assert.deepEqual(warnings.messages, ['relay stopping: interrupted'], 'one warning: the request given up')
        assert.match(warnings.seen[0]!.err ?? '', /still in flight at the stop's deadline/)
        assert.equal(await leaseHolder(name), null, 'the lease was released')
      } finally {
        await relay.stop()
        await gate.close()
        await gated.close().catch(() => {})
      }
      await nextRelayPublishesTheRest(name)
    })
  }

  // (b) A transaction of the test holds the relay's checkpoint row (FOR UPDATE) while the relay stops: the
  // stop's last drain publishes, and its checkpoint write waits for the lock. The lock is taken after the
  // appends committed, so its transaction holds none of them back. A relay re-reads soon and often after it
  // starts (LISTEN's own wake, then quick polls), so it may store the checkpoint of the events appended here
  // before the test locks the row (at load 9 it did, twice): the locked row says whether it did, and then the
  // test appends another pair. Locked, the row takes no write: what the relay has not stored by then, it cannot.
  test('stop() resolves while a lock holds its checkpoint write: the write is cancelled and skipped; the next relay publishes the rest once', async () => {
    const name = 'held-checkpoint'
    const warnings = new Warnings()
    const first = await appendQuietly('checkpoint-before')
    const relay = await activate(newRelay(name, nc, warnings))
    await eventually(
      async () => (await loadRelayCheckpoint(db.admin, name)).position === first.at(-1)!.position,
      'the checkpoint of the first events stored',
    )
    let events: AppendedEvent[] = []
    let lock: Awaited<ReturnType<typeof holdLock>> | undefined
    let stored = first.at(-1)!.position
    let pairs = 0
    while (lock === undefined) {
      if (++pairs > 5) throw new Error('the relay stored the checkpoint of 5 pairs before the test could lock it')
      events = await appendQuietly(`checkpoint-held-${pairs}`)
      const held = await holdLock(
        db.admin,
        (tx) => tx`select 1 from eventplane.relay_checkpoints where name = ${name} for update`,
      )
      stored = (await loadRelayCheckpoint(db.admin, name)).position
      if (stored < events[0]!.position) lock = held
      else await held.release()
    }
    try {
      warnings.seen.length = 0
      await within(relay.stop(), STOP_WAIT_MS, 'stop() to resolve while the checkpoint row is locked')
      assert.equal(
        relay.stats.published,
        2 + 2 * pairs,
        'the last drain published the events committed before the stop',
      )
      assert.deepEqual(warnings.messages, [
        "relay stopping: the checkpoint was not stored in time and is skipped; the next relay resumes after the stream's last message",
      ])
      const last = events.at(-1)!
      assert.equal(
        warnings.seen[0]!.checkpoint,
        `${last.txId}:${last.position}`,
        'the skipped write names its checkpoint',
      )
      // Cancelled in PostgreSQL, not left waiting for the lock: the write's backend goes while the lock is held.
      await eventually(
        async () => (await waitingOn('insert into eventplane.relay_checkpoints')) === 0,
        'the write cancelled',
        10_000,
      )
    } finally {
      await lock.release()
    }
    assert.equal(
      (await loadRelayCheckpoint(db.admin, name)).position,
      stored,
      'the checkpoint row stays where it was: the write was skipped',
    )
    await streamIsTheLog('after the stop')
    const next = await activate(newRelay(name, nc))
    try {
      const later = await appendQuietly('checkpoint-after', loud)
      await eventually(
        async () => (await loadRelayCheckpoint(db.admin, name)).position === later.at(-1)!.position,
        'the next relay to store its checkpoint past the skipped one',
      )
      await streamIsTheLog('after the next relay')
    } finally {
      await within(next.stop(), STOP_WAIT_MS, 'the next relay to stop')
    }
  })

  // (c) A transaction of the test holds the relay's lease row (FOR UPDATE) while the relay stops: its release
  // waits for the lock. A standby of the same name waits for the lease meanwhile (its own tries wait on the
  // lock too). The lease has no time to live: it is free once the session it names is gone.
  test('stop() resolves while a lock holds its lease release: the session is ended instead, and the standby takes over', async () => {
    const name = 'held-lease'
    const warnings = new Warnings()
    const relay = await activate(newRelay(name, nc, warnings))
    const standby = newRelay(name, nc, undefined, { lockRetryMs: 50 })
    standby.start()
    await eventually(() => standby.state === 'standby', 'the standby to stand by')
    const holder = (await leaseHolder(name))!
    await appendQuietly('lease-held')
    const lock = await holdLock(
      db.admin,
      (tx) => tx`select 1 from eventplane.relay_leases where name = ${name} for update`,
    )
    try {
      warnings.seen.length = 0
      await within(relay.stop(), STOP_WAIT_MS, 'stop() to resolve while the lease row is locked')
      assert.deepEqual(warnings.messages, [
        'relay stopping: the lease was not released in time; its session was ended instead, which frees the lease',
      ])
      assert.equal(await leaseHolder(name), holder, 'the row still names the old session: the release did not run')
      // Cancelled and ended while the lock is still held: the lease names a dead session.
      await eventually(async () => !(await alive(holder)), "the old lease session's end", 10_000)
      assert.notEqual(standby.state, 'active', 'the standby waits on the lock too')
    } finally {
      await lock.release()
    }
    try {
      await eventually(() => standby.state === 'active', 'the standby to take over')
      assert.notEqual(await leaseHolder(name), holder)
      await appendQuietly('lease-after', loud)
      await streamIsTheLog('after the standby took over')
    } finally {
      await within(standby.stop(), STOP_WAIT_MS, 'the standby to stop')
    }
  })
  // (d) A transaction of the test holds the log itself (LOCK TABLE events): the stop's last drain reads the log
  // and waits for the lock. The events commit after that transaction took its xid and before its lock: the
  // relay's gap-safe reads stop before them whenever it polls (after its LISTEN it re-reads at growing
  // intervals), so it cannot have published them before the lock. The next relay publishes them.
  test("stop() resolves while a lock holds its last drain's read of the log; the next relay publishes what it did not", async () => {
    const name = 'held-read'
    const warnings = new Warnings()
    const relay = await activate(newRelay(name, nc, warnings))
    const lock = await holdLock(db.admin, (tx) => tx`select pg_current_xact_id()`)
    await appendQuietly('read-held')
    await lock.also((tx) => tx`lock table eventplane.events in access exclusive mode`)
    try {
      warnings.seen.length = 0
      await within(relay.stop(), STOP_WAIT_MS, 'stop() to resolve while the log is locked')
      assert.equal(relay.stats.published, 0, 'nothing was published: the events are behind the held xid')
      // One warning: the last drain's read cut at the deadline, or (a poll of the relay already waiting on the
      // lock when stop() came) that read cut there instead; the same bound either way.
      assert.equal(warnings.messages.length, 1, warnings.messages.join(' | '))
      assert.match(
        warnings.messages[0]!,
        /^relay stopping: (interrupted$|its last drain was cut at the stop's deadline; the next active relay publishes the rest$)/,
      )
      assert.equal(await leaseHolder(name), null, 'the lease was released')
    } finally {
      await lock.release()
    }
    await nextRelayPublishesTheRest(name)
  })

  // (e) A standby's try for the lease waits on the lease row's lock (the holder stays active throughout).
  test("a standby's stop resolves while its try for the lease waits on a lock; its statement is cancelled", async () => {
    const name = 'held-standby'
    const relay = await activate(newRelay(name, nc))
    const holder = (await leaseHolder(name))!
    const standby = newRelay(name, nc, undefined, { lockRetryMs: 50 })
    try {
      standby.start()
      await eventually(() => standby.state === 'standby', 'the standby to stand by')
      const lock = await holdLock(
        db.admin,
        (tx) => tx`select 1 from eventplane.relay_leases where name = ${name} for update`,
      )
      try {
        await eventually(async () => (await waitingOn('acquire_relay_lease')) === 1, "the standby's try to wait")
        await within(standby.stop(), STOP_WAIT_MS, "the standby's stop to resolve while the lease row is locked")
        await eventually(async () => (await waitingOn('acquire_relay_lease')) === 0, 'the try cancelled', 10_000)
      } finally {
        await lock.release()
      }
      assert.equal(await leaseHolder(name), holder, 'the lease stays with the active relay')
      assert.equal(relay.state, 'active')
    } finally {
      await within(standby.stop(), STOP_WAIT_MS, 'the standby to stop')
      await within(relay.stop(), STOP_WAIT_MS, 'the relay to stop')
    }
  })
  // (f) A transaction of the test locks the lease table (ACCESS EXCLUSIVE): the relay's periodic lease check
  // (every 200 ms here) waits for it, and so would the release. Nothing is left to publish when the lock is
  // taken, so the one statement waiting is the lease check's; the event appended then waits for the next relay.
  test('stop() resolves while its lease check waits on a lock; the next relay publishes what it did not', async () => {
    const name = 'held-check'
    const warnings = new Warnings()
    const relay = await activate(newRelay(name, nc, warnings, { pollIntervalMs: 200 }))
    const holder = (await leaseHolder(name))!
    const lock = await holdLock(db.admin, (tx) => tx`lock table eventplane.relay_leases in access exclusive mode`)
    try {
      await eventually(async () => (await waitingOn('holds_relay_lease')) === 1, "the relay's lease check to wait")
      await appendQuietly('check-held')
      warnings.seen.length = 0
      await within(relay.stop(), STOP_WAIT_MS, 'stop() to resolve while the lease table is locked')
      assert.deepEqual(warnings.messages, [
        'relay stopping: interrupted',
        'relay stopping: the lease was not released in time; its session was ended instead, which frees the lease',
      ])
      assert.match(warnings.seen[0]!.err ?? '', /the lease check was still in flight at the stop's deadline/)
      assert.equal(relay.stats.published, 0, 'the relay never got past its lease check')
      await eventually(async () => !(await alive(holder)), "the old lease session's end", 10_000)
    } finally {
      await lock.release()
    }
    await nextRelayPublishesTheRest(name)
  })
})

/** The two helpers every bounded step of a stop goes through: how long it waits, and what it rejects with. */
describe('settlesWithin and unlessAborted', () => {
  const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length

  test('settlesWithin: true once the promise settles either way, false when the bound passes first; no timer left', async () => {
    const before = timers()
    assert.equal(await settlesWithin(Promise.reject(new Error('failed')), 60_000), true, 'a rejection settles too')
    assert.equal(await settlesWithin(Promise.resolve(1), 60_000), true)
    assert.equal(timers(), before, 'the bound of a promise that settled first is cleared')
    assert.equal(await settlesWithin(new Promise(() => {}), 5), false)
    // Unbounded: it waits, also past the timers that a bound would have set (released by a 20 ms timer here).
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    const unbounded = settlesWithin(held, Number.POSITIVE_INFINITY)
    setTimeout(release, 20)
    assert.equal(await unbounded, true)
  })

  test('unlessAborted: the work, or its reason at the abort, at once when already aborted; a failing work unobserved', async () => {
    assert.equal(await unlessAborted(Promise.resolve(7), new AbortController().signal), 7)
    const aborted = new AbortController()
    aborted.abort(new Error('signal reason'))
    const given = unlessAborted(new Promise(() => {}), aborted.signal, () => new Error('mine'))
    await within(assert.rejects(given, /mine/), 5000, 'the rejection of a signal aborted before')
    await assert.rejects(unlessAborted(new Promise(() => {}), aborted.signal), /signal reason/)
    const later = new AbortController()
    let fail!: (e: Error) => void
    const work = new Promise<never>((_, reject) => (fail = reject))
    const givenUp = unlessAborted(work, later.signal, () => new Error('stop deadline'))
    later.abort(new Error('signal reason'))
    await assert.rejects(givenUp, /stop deadline/)
    // The work given up fails afterwards: nobody awaits it, and that is no unhandled rejection.
    const unhandled: unknown[] = []
    const onUnhandled = (e: unknown): void => {
      unhandled.push(e)
    }
    process.on('unhandledRejection', onUnhandled)
    try {
      // Also given up at once (the signal aborted before), its work fails afterwards.
      let failToo!: (e: Error) => void
      const workToo = new Promise<never>((_, reject) => (failToo = reject))
      await assert.rejects(unlessAborted(workToo, aborted.signal), /signal reason/)
      failToo(new Error('the read failed after all'))
      fail(new Error('the request failed after all'))
      await new Promise((resolve) => setImmediate(resolve))
      await new Promise((resolve) => setImmediate(resolve))
      assert.deepEqual(unhandled, [])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })
})
