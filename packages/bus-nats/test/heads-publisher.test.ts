import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { EventFactory, EventplaneError, isEventplaneError } from '@eventplane/core'
import { PgEventStore, ROLES, checkHeads, headsToFile, readHeads, signHeads } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import { HeadsPublisher, publishTenantHeads } from '../src/heads-publisher.ts'
import { ensureHeadsStream, headsOfTenant, latestPublishedHeads, publishHeads } from '../src/heads-stream.ts'
import { HEADS_STREAM_NAME, HEADS_SUBJECTS, headsSubject } from '../src/subjects.ts'
import { startNatsServer, type TestNatsServer } from '../src/testing/index.ts'

/** The heads publisher's own promises: only while active, the stream it keeps, what counts as a tenant's anchor. */
describe('heads publisher and heads stream', () => {
  let db: TestDatabase
  let nats: TestNatsServer
  let relay: NatsConnection
  let operator: JetStreamManager
  let jsm: JetStreamManager
  let js: JetStreamClient
  const keys = generateKeyPairSync('ed25519')
  const pinned = keys.publicKey.export({ type: 'spki', format: 'pem' })
  const signed = async (tenant: string) => signHeads(await readHeads(db.admin, tenant), keys.privateKey)
  /**
   * The heads stream with acme's heads published unsigned (what test 2's publisher leaves, again: a duplicate
   * then), for each test that reads or adds to it: none relies on a test before it (test 1 deletes the stream).
   */
  const unsignedHeadsPublished = async () => {
    await ensureHeadsStream(jsm)
    await publishHeads(js, headsToFile(await readHeads(db.admin, 'acme')))
  }
  const messages = async () =>
    (await operator.streams.info(HEADS_STREAM_NAME).catch(() => undefined))?.state.messages ?? 0

  before(async () => {
    db = await createTestDatabase('ep_heads_pub')
    const store = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    for (const tenant of ['acme', 'globex']) {
      const f = EventFactory.forTenant(tenant, { causedBy: 'user:test' })
      const s = { tenant, category: 'deployment', id: 'web' }
      for (let i = 1; i <= 3; i++) await store.append(s, [f.intent(s, 'scaled', { replicas: i })])
    }
    nats = await startNatsServer({ tenants: [] })
    relay = await nats.connect('relay')
    jsm = await jetstreamManager(relay, { checkAPI: false })
    js = jetstream(relay)
    operator = await jetstreamManager(await nats.connect('operator'), { checkAPI: false })
  })
  after(async () => {
    await nats?.stop()
    await db?.drop()
  })

  test('ensureHeadsStream turns deny_delete and deny_purge on (rollups off) on a stream made without, and refuses one with other subjects', async () => {
    await operator.streams.add({
      name: HEADS_STREAM_NAME,
      subjects: [HEADS_SUBJECTS],
      deny_delete: false,
      deny_purge: false,
      allow_rollup_hdrs: true,
    })
    const info = await ensureHeadsStream(jsm)
    assert.deepEqual(
      [info.config.deny_delete, info.config.deny_purge, info.config.allow_rollup_hdrs],
      [true, true, false],
      'the stream as the relay left it',
    )
    await operator.streams.delete(HEADS_STREAM_NAME)
    await operator.streams.add({ name: HEADS_STREAM_NAME, subjects: [headsSubject('acme')] })
    await assert.rejects(ensureHeadsStream(jsm), (e: unknown) => isEventplaneError(e, 'bus.stream_mismatch'))
    await operator.streams.delete(HEADS_STREAM_NAME)
  })

  test('a publisher that is not active publishes nothing; once active it publishes every tenant', async () => {
    let active = false
    const publisher = new HeadsPublisher({
      sql: db.connect(ROLES.relay, 1),
      nc: relay,
      everyMs: 1000,
      isActive: () => active,
    })
    const idle = await publisher.publishRound()
    assert.deepEqual(idle, { published: [], unchanged: 0, refused: [], failed: [] })
    assert.equal(await messages(), 0, 'a standby publishes nothing')
    active = true
    const round = await publisher.publishRound()
    assert.deepEqual(round.published.sort(), ['acme', 'globex'])
    assert.equal(await messages(), 2)
  })

  test('heads published unsigned, then the same heads signed: the signed ones are a new message, the anchor a pinned key finds', async () => {
    // acme's heads published unsigned (a relay without a key, or `heads --publish`); the relay signs the same heads.
    await unsignedHeadsPublished()
    const heads = await signed('acme')
    const unsigned = (await latestPublishedHeads(jsm, 'acme')).found!
    assert.equal((unsigned.file as { digest: string }).digest, heads.digest.toString('hex'), 'the same heads, unsigned')
    const published = await publishHeads(js, headsToFile(heads))
    assert.equal(published.duplicate, false, 'not taken for a duplicate of the unsigned message')
    const { found } = await latestPublishedHeads(jsm, 'acme', headsOfTenant('acme', pinned))
    assert.equal(found?.seq, published.seq, 'the signed heads are the anchor for the pinned key')
  })

  test('heads of one point with another digest are a new message; the same heads again are a duplicate', async () => {
    await ensureHeadsStream(jsm)
    const file = headsToFile(await signed('acme'))
    const first = await publishHeads(js, file)
    const again = await publishHeads(js, file)
    assert.equal(again.duplicate, true, 'the same heads are stored once')
    assert.equal(again.seq, first.seq)
    // Another history at the same position (a rewrite published with force): never taken for the same heads.
    const other = await publishHeads(js, { ...file, digest: 'ff'.repeat(32) })
    assert.equal(other.duplicate, false, 'heads with another digest are not a duplicate of these')
    assert.ok(other.seq > first.seq)
  })

  test("another tenant's heads on a tenant's subject, signed by the same key, are refused; the anchor before stays", async () => {
    await ensureHeadsStream(jsm)
    const published = await publishTenantHeads({
      sql: db.connect(ROLES.relay, 1),
      jsm,
      js,
      heads: await signed('acme'),
    })
    assert.notEqual(published.outcome, 'refused')
    const look = await latestPublishedHeads(jsm, 'acme', headsOfTenant('acme', pinned))
    const anchor = look.found!.seq
    const borrowed = (await js.publish(headsSubject('acme'), JSON.stringify(headsToFile(await signed('globex'))))).seq
    const { found, refused } = await latestPublishedHeads(jsm, 'acme', headsOfTenant('acme', pinned))
    assert.equal(found?.seq, anchor)
    assert.deepEqual(
      refused.map((r) => r.seq),
      [borrowed, ...look.refused.map((r) => r.seq)],
      'refused, newest first, before the messages refused already',
    )
    assert.match(refused[0]!.reason, /tenant globex/)
    // Taken for the anchor, globex's heads would have been compared with acme's log.
    assert.equal(checkHeads(found!.file).tenant, 'acme')
  })

  test('a NATS failure while a message is checked ends the look-up with it: never counted as a refused message', async () => {
    await unsignedHeadsPublished() // a message for the look-up to check
    // An accept that needs NATS itself (a key fetched, a part read) and cannot reach it.
    const down = new EventplaneError('bus.unavailable', 'NATS is unreachable')
    await assert.rejects(
      latestPublishedHeads(jsm, 'acme', () => {
        throw down
      }),
      (e: unknown) => e === down,
    )
  })

  test("a publisher given a signing key publishes heads signed by it: the anchor that key's holder finds", async () => {
    await ensureHeadsStream(jsm)
    const own = generateKeyPairSync('ed25519')
    const ownPem = own.publicKey.export({ type: 'spki', format: 'pem' })
    const publisher = new HeadsPublisher({
      sql: db.connect(ROLES.relay, 1),
      nc: relay,
      everyMs: 1000,
      signingKey: own.privateKey,
    })
    const round = await publisher.publishRound()
    assert.deepEqual(round.published.sort(), ['acme', 'globex'])
    for (const tenant of ['acme', 'globex']) {
      const { found } = await latestPublishedHeads(jsm, tenant, headsOfTenant(tenant, ownPem))
      assert.ok(found, `${tenant}'s heads signed by the publisher's key`)
      assert.equal(checkHeads(found.file, ownPem).tenant, tenant)
    }
  })

  test("the anchor at the stream's first message is found behind a newer refused one", async () => {
    // The walk back reads down to sequence 1 (mutation audit 2026-12-02, mutrand: stopping at 2 went unseen).
    await operator.streams.delete(HEADS_STREAM_NAME).catch(() => {})
    await ensureHeadsStream(jsm)
    const first = await publishHeads(js, headsToFile(await readHeads(db.admin, 'acme')))
    const forged = (await js.publish(headsSubject('acme'), '{"not":"heads"}')).seq
    assert.deepEqual([first.seq, forged], [1, 2])
    const { found, refused } = await latestPublishedHeads(jsm, 'acme', headsOfTenant('acme'))
    assert.equal(found?.seq, 1)
    assert.deepEqual(
      refused.map((r) => r.seq),
      [2],
    )
  })

  test('a heads file of exactly partBytes goes out as one message; one byte larger, in parts', async () => {
    // "A file larger than partBytes goes out as parts" (mutation audit 2026-12-02, mutrand2: `>=` went unseen).
    // Another tenant's name on acme's heads: the messages are on its own subjects, no other test's anchor.
    await ensureHeadsStream(jsm)
    const file = { ...headsToFile(await readHeads(db.admin, 'acme')), tenant: 'initech' }
    const bytes = Buffer.byteLength(JSON.stringify(file))
    const whole = await publishHeads(js, file, bytes)
    assert.deepEqual([whole.parts, whole.duplicate], [0, false], 'a file of partBytes is one message')
    const parted = await publishHeads(js, { ...file, digest: 'ee'.repeat(32) }, bytes - 1)
    assert.ok(parted.parts >= 1, 'a file one byte over partBytes goes out in parts')
  })
})
