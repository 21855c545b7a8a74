import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventFactory } from '@eventplane/core'
import { PgEventStore, ROLES, type Sql, readHeads } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import { HeadsPublisher } from '../src/heads-publisher.ts'
import { headsOfTenant, latestPublishedHeads } from '../src/heads-stream.ts'
import type { Logger } from '../src/logger.ts'
import { HEADS_SUBJECTS } from '../src/subjects.ts'
import { startNatsServer, startRequestGate, type TestNatsServer } from '../src/testing/index.ts'
import { eventually, within } from './fixtures.ts'

/** The stop's bound in these tests (the relay passes its stopDrainMs, 2 s by default). */
const STOP_WITHIN_MS = 300
/**
 * The publisher's own bound on a JetStream request, far past the test's wait for stop(): a stop that waits for
 * the round in flight waits for the held reply a minute, and the test fails at STOP_WAIT_MS.
 */
const REQUEST_TIMEOUT_MS = 60_000
const STOP_WAIT_MS = 5_000

/** The publisher's warnings and errors, and its debug lines apart. */
class Warnings implements Logger {
  readonly seen: string[] = []
  readonly debugged: string[] = []
  debug(_obj: object, msg = ''): void {
    this.debugged.push(msg)
  }
  info(): void {}
  warn(_obj: object, msg = ''): void {
    this.seen.push(msg)
  }
  error(obj: object, msg = ''): void {
    this.warn(obj, msg)
  }
}

const ABANDONED =
  "heads publisher stopping: the round in flight was abandoned at the stop's deadline; the next round publishes newer heads"

// `evtctl relay --heads-every-ms` stops its heads publisher beside the relay, bounded by the relay's stop
// deadline: a round in flight waits on JetStream (its reads, its publish's ack) and on PostgreSQL, seconds each
// while a server stalls. Each test holds its obstacle until stop() resolved: "resolved while held" is the bound.
describe('heads publisher stop: the round in flight abandoned at the deadline', () => {
  let db: TestDatabase
  let nats: TestNatsServer
  let nc: NatsConnection

  const newPublisher = (on: NatsConnection, logger: Logger) =>
    new HeadsPublisher({
      sql: db.connect(ROLES.relay, 2),
      nc: on,
      everyMs: 1000,
      logger,
      timeoutMs: REQUEST_TIMEOUT_MS,
    })
  /** acme's newest published heads: their digest, or undefined. */
  const anchor = async () =>
    (
      await latestPublishedHeads(await jetstreamManager(nc), 'acme', headsOfTenant('acme'))
    ).found?.heads.digest.toString('hex')
  const appendOne = async (id: string) => {
    const f = EventFactory.forTenant('acme', { causedBy: 'user:test' })
    const s = { tenant: 'acme', category: 'deployment', id }
    await new PgEventStore(db.connect(ROLES.intentWriter, 1)).append(s, [f.intent(s, 'scaled', { replicas: 1 })])
  }

  before(async () => {
    db = await createTestDatabase('ep_heads_stop')
    await appendOne('web')
    nats = await startNatsServer({ tenants: [] })
    nc = await nats.connect('relay')
  })
  after(async () => {
    await nats?.stop()
    await db?.drop()
  })

  test("stop(withinMs) resolves while the heads publish's ack is held; the cut publish is no failure, the next round anchors the heads", async () => {
    const gate = await startRequestGate(nats.port, HEADS_SUBJECTS.replace('>', ''))
    const gated = await nats.connect('relay', { servers: gate.url, maxReconnectAttempts: 0 })
    const warnings = new Warnings()
    const publisher = newPublisher(gated, warnings)
    try {
      publisher.start()
      assert.equal(await within(gate.held, 20_000, "the heads publish's ack, held"), 'eventplane-heads.acme')
      await within(publisher.stop(STOP_WITHIN_MS), STOP_WAIT_MS, "stop() to resolve while the publish's ack is held")
      assert.ok(gate.holding, 'the ack is still held: stop() did not wait for it')
      assert.deepEqual(warnings.seen, [ABANDONED])
      assert.equal(await publisher.stop(), undefined, 'a second stop returns the first one: it does not wait again')
      // What the process does next: it closes the connection, and the publish waiting for its ack fails.
      await gated.close()
      await eventually(() => warnings.debugged.includes('publishing heads failed'), 'the cut publish, failed')
      assert.deepEqual(warnings.seen, [ABANDONED], 'the abandoned round warns of no failure')
    } finally {
      await gate.close()
      await gated.close().catch(() => {})
    }
    // A missed anchor at most: the next round (of the next active relay) anchors the heads of the log.
    const expected = (await readHeads(db.admin, 'acme')).digest.toString('hex')
    const round = await newPublisher(nc, new Warnings()).publishRound()
    assert.deepEqual(round.failed, [])
    assert.equal(await anchor(), expected)
  })

  test('stop(withinMs) resolves while the round waits on a lock of the log; the next round publishes the heads', async () => {
    await appendOne('api')
    const expected = (await readHeads(db.admin, 'acme')).digest.toString('hex')
    const lock = await holdLock(db.admin, (tx) => tx`lock table eventplane.events in access exclusive mode`)
    const warnings = new Warnings()
    const publisher = newPublisher(nc, warnings)
    try {
      publisher.start()
      await eventually(async () => (await waitingOnLocks(db.admin)) > 0, "the round's read, waiting on the lock")
      await within(publisher.stop(STOP_WITHIN_MS), STOP_WAIT_MS, 'stop() to resolve while the log is locked')
      assert.ok((await waitingOnLocks(db.admin)) > 0, 'the read still waits: stop() did not wait for it')
      assert.deepEqual(warnings.seen, [ABANDONED])
    } finally {
      await lock.release()
    }
    const next = newPublisher(nc, new Warnings())
    await eventually(async () => {
      const round = await next.publishRound()
      return round.failed.length === 0 && (await anchor()) === expected
    }, 'the next round to publish the heads of the log')
  })
})

/** A transaction of `admin` holding what `lock` takes until `release()` rolls it back. */
async function holdLock(admin: Sql, lock: (tx: Sql) => Promise<unknown>): Promise<{ release(): Promise<void> }> {
  const tx = await admin.reserve()
  await tx`begin`
  await lock(tx)
  return {
    async release() {
      await tx`rollback`
      tx.release()
    },
  }
}

/** Backends of the relay's role waiting on a lock. */
async function waitingOnLocks(admin: Sql): Promise<number> {
  const [{ n }] = (await admin`
    select count(*)::int as n from pg_stat_activity
    where usename = ${ROLES.relay} and wait_event_type = 'Lock'`) as [{ n: number }]
  return n
}
