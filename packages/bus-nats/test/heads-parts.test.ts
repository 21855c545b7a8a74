import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { type ChainHeads, ROLES, checkHeads, headsToFile, readHeads, signHeads, verifyLog } from '@eventplane/store-pg'
import { bulkLoadEvents, createTestDatabase, eventually, type TestDatabase } from '@eventplane/store-pg/testing'
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import { DEFAULT_HEADS_PART_BYTES, ensureHeadsStream, latestPublishedHeads } from '../src/heads-stream.ts'
import { publishTenantHeads } from '../src/heads-publisher.ts'
import { headsPartsSubject, headsSubject } from '../src/subjects.ts'
import { startNatsServer, type TestNatsServer } from '../src/testing/index.ts'

/** Streams per tenant: their heads file (~130 bytes a stream) is larger than NATS's default 1 MiB max_payload. */
const STREAMS = 9_000

describe('heads of a tenant with more streams than fit in one NATS message', () => {
  let db: TestDatabase
  let nats: TestNatsServer
  let nc: NatsConnection
  let jsm: JetStreamManager
  let js: JetStreamClient
  const keys = generateKeyPairSync('ed25519')
  const pinned = keys.publicKey.export({ type: 'spki', format: 'pem' })
  /** The newest heads of `tenant` signed by the test's key, as the relay and `verify --public-key` take them. */
  const anchor = (tenant: string) => latestPublishedHeads(jsm, tenant, (file) => checkHeads(file, pinned))
  const publish = async (tenant: string) =>
    publishTenantHeads({
      sql: db.connect(ROLES.relay, 1),
      jsm,
      js,
      heads: signHeads(await readHeads(db.admin, tenant), keys.privateKey),
    })

  /**
   * Heads are taken at the gap-safe head, which any open transaction of the cluster (another test's) holds
   * back: wait until it covers `stream` at `version`.
   */
  const headsReach = (tenant: string, stream: string, version: number) =>
    eventually(
      async () => (await readHeads(db.admin, tenant)).streams.find((s) => s.stream_id === stream)?.version === version,
      120_000,
      `${tenant}'s heads reach ${stream}@${version}`,
    )

  before(async () => {
    db = await createTestDatabase('ep_heads_parts')
    // Ten tenants (tenant0..tenant9) of STREAMS streams, one event each.
    await bulkLoadEvents(db.admin, 0, STREAMS * 10 - 1, STREAMS * 10)
    nats = await startNatsServer({ tenants: [] })
    nc = await nats.connect('relay')
    jsm = await jetstreamManager(nc, { checkAPI: false })
    js = jetstream(nc)
    await ensureHeadsStream(jsm)
    await headsReach('tenant0', 'd0', 1)
  })
  after(async () => {
    await nats?.stop()
    await db?.drop()
  })

  test('they are published in parts, read back whole, and the log verifies against them', async () => {
    const heads = signHeads(await readHeads(db.admin, 'tenant0'), keys.privateKey)
    assert.equal(heads.streams.length, STREAMS)
    assert.ok(Buffer.byteLength(JSON.stringify(headsToFile(heads))) > 1024 * 1024, 'larger than one message')

    const r = await publish('tenant0')
    assert.equal(r.outcome, 'published')
    assert.ok(r.outcome === 'published' && r.published.parts >= 3, 'three parts of at most 512 KiB')
    assert.equal(r.outcome === 'published' && r.published.subject, headsSubject('tenant0'))
    const info = await jsm.streams.info('EVENTPLANE_HEADS', { subjects_filter: '>' })
    assert.equal(info.state.subjects?.[headsPartsSubject('tenant0')], r.outcome === 'published' && r.published.parts)
    for (const seq of r.outcome === 'published' ? [r.published.seq] : []) {
      const m = await jsm.streams.getMessage('EVENTPLANE_HEADS', { seq })
      assert.ok(m && m.data.length < DEFAULT_HEADS_PART_BYTES, 'the listing message is small')
    }

    const { found, refused } = await anchor('tenant0')
    assert.deepEqual(refused, [])
    const back = found!.heads as ChainHeads
    assert.equal(back.streams.length, STREAMS)
    assert.ok(back.digest.equals(heads.digest))
    assert.deepEqual(
      back.streams.map((s) => `${s.stream_id}@${s.version}`),
      heads.streams.map((s) => `${s.stream_id}@${s.version}`),
    )
    const checked = await verifyLog(db.admin, { tenant: 'tenant0', heads: back })
    assert.equal(checked.intact, true, JSON.stringify(checked.breaks.slice(0, 3)))
    assert.equal(checked.events, STREAMS)

    // Unchanged heads publish nothing more; changed ones are checked against the parted anchor and published.
    assert.equal((await publish('tenant0')).outcome, 'unchanged')
    await bulkLoadEvents(db.admin, STREAMS * 10, STREAMS * 10 + 9, STREAMS * 10)
    await headsReach('tenant0', 'd0', 2)
    const next = await publish('tenant0')
    assert.equal(next.outcome, 'published', 'the new heads extend the parted anchor')
  })

  test('a listing whose parts are not this file’s is refused, and the anchor before it stays the anchor', async () => {
    const good = await publish('tenant1')
    assert.equal(good.outcome, 'published')
    const goodSeq = good.outcome === 'published' ? good.published.seq : 0
    const listing = (await jsm.streams.getMessage('EVENTPLANE_HEADS', { seq: goodSeq }))!.json<{ parts: number[] }>()
    const forge = async (body: unknown) => (await js.publish(headsSubject('tenant1'), JSON.stringify(body))).seq

    // A part of another tenant's heads; a part changed (one stream's hash) and republished; a part dropped.
    const other = await publish('tenant2')
    const otherListing = (await jsm.streams.getMessage('EVENTPLANE_HEADS', {
      seq: other.outcome === 'published' ? other.published.seq : 0,
    }))!.json<{ parts: number[] }>()
    const borrowed = await forge({ ...listing, parts: [otherListing.parts[0], ...listing.parts.slice(1)] })
    const part0 = (await jsm.streams.getMessage('EVENTPLANE_HEADS', { seq: listing.parts[0]! }))!.json<{
      streams: { hash: string }[]
    }>()
    part0.streams[0]!.hash = '00'.repeat(32)
    const changedSeq = (await js.publish(headsPartsSubject('tenant1'), JSON.stringify(part0))).seq
    const changed = await forge({ ...listing, parts: [changedSeq, ...listing.parts.slice(1)] })
    const dropped = await forge({ ...listing, parts: listing.parts.slice(1) })

    const { found, refused } = await anchor('tenant1')
    assert.equal(found?.seq, goodSeq)
    assert.deepEqual(
      refused.map((x) => x.seq),
      [dropped, changed, borrowed],
    )
    assert.match(refused[0]!.reason, /part 0 .* is missing or not a part of these heads/)
    assert.match(refused[1]!.reason, /digest does not match/)
    assert.match(refused[2]!.reason, /part 0 .* is missing or not a part of these heads/)
  })
})
