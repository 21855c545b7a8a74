import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { DEFAULT_RELAY_NAME, HEADS_STREAM_NAME, headsSubject, latestPublishedHeads } from '@eventplane/bus-nats'
import { type TestNatsServer, startNatsServer } from '@eventplane/bus-nats/testing'
import { EventFactory } from '@eventplane/core'
import {
  type ChainRow,
  PgEventStore,
  ROLES,
  type Sql,
  canonicalText,
  chainLink,
  checkHeads,
  headsToFile,
  readHeads,
} from '@eventplane/store-pg'
import { createTestDatabase, eventually, type TestDatabase } from '@eventplane/store-pg/testing'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { type CliProcess, failureLine, killAll, runCli, startCli } from './helpers.ts'

const pem = (k: { export(o: object): string | Buffer }, type: string) => k.export({ type, format: 'pem' }) as string

/**
 * The attack heads exist for: as a superuser, change an event's payload and
 * recompute every later hash of its stream (in JavaScript, from the
 * documented canonical form), so the chain alone is consistent again.
 */
async function rewriteAndRechain(admin: Sql, tenant: string, id: string, version: number): Promise<void> {
  await admin.begin(async (tx) => {
    await tx`alter table eventplane.events disable trigger user`
    await tx`update eventplane.events set data = jsonb_set(data, '{replicas}', '300')
      where tenant_id = ${tenant} and stream_id = ${id} and stream_version = ${version}`
    const rows = await tx<(Omit<ChainRow, 'stream_version'> & { stream_version: string })[]>`
      select * from eventplane.chain_rows(${tenant}, 'deployment', ${id}, '', '', '', 0, 1000)`
    let prev: Buffer | null = null
    for (const r of rows) {
      const row = { ...r, stream_version: Number(r.stream_version) }
      const hash = chainLink(prev, canonicalText(row, row.data))
      await tx`update eventplane.events set hash = ${hash} where event_id = ${row.event_id}`
      prev = hash
    }
    await tx`alter table eventplane.events enable trigger user`
  })
}

describe('chain heads published on NATS', () => {
  let db: TestDatabase
  let nats: TestNatsServer
  let dir: string
  let relay: CliProcess
  /** The relay's environment: its role's URL, its NATS user. */
  let relayEnv: Record<string, string>
  const keys = generateKeyPairSync('ed25519')
  /** The operator's CLI environment: admin URL, operator creds. */
  const operator = () => ({
    EVENTPLANE_DATABASE_URL: db.url,
    EVENTPLANE_NATS_URL: nats.url,
    EVENTPLANE_NATS_CREDS: nats.credentials.operator!.creds,
  })
  const maxPosition = async (tenant: string) => {
    const [{ pos }] = (await db.admin`
      select max(global_position)::text as pos from eventplane.events where tenant_id = ${tenant}`) as [{ pos: string }]
    return pos
  }
  /** The tenant's newest heads message (any body), or with `signed` the newest signed by the relay's key. */
  const latest = async (tenant: string, signed = false) => {
    const nc = await nats.connect('operator')
    try {
      const accept = signed
        ? (file: unknown) => checkHeads(file, keys.publicKey.export({ type: 'spki', format: 'pem' }))
        : undefined
      return (await latestPublishedHeads(await jetstreamManager(nc), tenant, accept)).found
    } finally {
      await nc.close()
    }
  }
  /** Publishes a message on the tenant's heads subject with the relay's credentials, as a thief of them could. */
  const publishAsRelay = async (tenant: string, body: unknown) => {
    const nc = await nats.connect('relay')
    try {
      return (await jetstream(nc).publish(headsSubject(tenant), JSON.stringify(body))).seq
    } finally {
      await nc.close()
    }
  }

  /** Each tenant's heads published at the end of its log: the relay started in before() does it in its first rounds. */
  const headsPublished = async (): Promise<void> => {
    for (const tenant of ['acme', 'globex']) {
      const pos = await maxPosition(tenant)
      await eventually(
        async () => ((await latest(tenant))?.file as { global_position?: string } | undefined)?.global_position === pos,
        90_000, // the relay's start and rounds are slow on a loaded machine
        `${tenant}'s heads published at ${pos}`,
      )
    }
  }
  let forgery: Promise<{ before: number; forged: number; junk: number; mark: number }> | undefined
  /**
   * acme's web stream rewritten and re-hashed after its heads were published, then, with the relay's NATS
   * credentials (not its signing key), the unsigned heads of the rewritten history published (`forged`, a thief's
   * forgery) and a message that is not heads (`junk`), so that the real anchor (`before`) is no longer newest;
   * `mark`: the relay's stderr so far. Made once, by whichever test needs it first: none relies on a test before it.
   */
  const rewrittenAndForged = () =>
    (forgery ??= (async () => {
      await headsPublished()
      const before = (await latest('acme'))!.seq
      await rewriteAndRechain(db.admin, 'acme', 'web', 3)
      const forged = await publishAsRelay('acme', headsToFile(await readHeads(db.admin, 'acme')))
      const junk = await publishAsRelay('acme', { not: 'heads' })
      return { before, forged, junk, mark: relay.stderr.length }
    })())

  before(async () => {
    db = await createTestDatabase('ep_cli_heads_nats')
    nats = await startNatsServer({ tenants: ['acme'] })
    dir = await mkdtemp(join(tmpdir(), 'ep-heads-nats-'))
    await writeFile(join(dir, 'heads.key'), pem(keys.privateKey, 'pkcs8'), { mode: 0o600 })
    await writeFile(join(dir, 'heads.pub'), pem(keys.publicKey, 'spki'))
    const store = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    for (const tenant of ['acme', 'globex']) {
      const f = EventFactory.forTenant(tenant, { causedBy: 'user:test' })
      for (const id of ['web', 'api']) {
        const s = { tenant, category: 'deployment', id }
        for (let i = 1; i <= 5; i++) await store.append(s, [f.intent(s, 'scaled', { replicas: i })])
      }
    }
    // The relay as deployed: its own role and NATS user, publishing signed heads every second.
    const url = new URL(db.url)
    url.username = ROLES.relay
    relayEnv = {
      EVENTPLANE_DATABASE_URL: url.toString(),
      EVENTPLANE_NATS_URL: nats.url,
      EVENTPLANE_NATS_CREDS: nats.credentials.relay!.creds,
    }
    relay = startCli(
      ['relay', '--json', '--poll-ms', '200', '--heads-every-ms', '1000', '--heads-sign-key', join(dir, 'heads.key')],
      { env: relayEnv },
    )
  })
  after(async () => {
    killAll()
    await nats?.stop()
    await Promise.all([db?.drop(), rm(dir, { recursive: true, force: true })])
  })

  test('the relay publishes every tenant’s signed heads; verify --against nats checks the log against them', async () => {
    await headsPublished()
    const ok = await runCli(
      ['verify', '--tenant', 'acme', '--against', 'nats', '--public-key', join(dir, 'heads.pub'), '--json'],
      { env: operator() },
    )
    assert.equal(ok.code, 0, ok.stderr)
    const report = JSON.parse(ok.stdout)
    assert.equal(report.intact, true)
    assert.equal(report.events, 10)
    assert.equal(report.against.stream, HEADS_STREAM_NAME)
    assert.equal(report.against.global_position, await maxPosition('acme'))
    assert.ok(report.against.signed_by, 'signed by the relay’s key')
    assert.equal(report.against.authenticated, true, 'signed by the --public-key')
    assert.doesNotMatch(ok.stderr, /WARNING/)

    // A one-shot publish of the same heads adds nothing: the newest published are these.
    const again = await runCli(['heads', '--tenant', 'acme', '--publish', '--json'], { env: operator() })
    assert.equal(again.code, 0, again.stderr)
    assert.equal(JSON.parse(again.stdout).published.unchanged, true)
  })

  test('a stream rewritten with recomputed hashes after its heads were published: verify --against nats exits 2 naming it', async () => {
    const { before, forged, junk, mark } = await rewrittenAndForged()

    // The chain alone is consistent again: only the anchor outside PostgreSQL shows the rewrite.
    const alone = await runCli(['verify', '--tenant', 'acme'], { env: operator() })
    assert.equal(alone.code, 0, alone.stderr)

    // The relay's next rounds still refuse to publish heads of the rewritten history (and say why): the
    // forged heads are not its own signed ones and the junk is not heads, so neither is taken as the anchor.
    // Two refusals after the forgery: the second round began after it.
    await eventually(
      () => relay.stderr.slice(mark).split('heads not published').length > 2,
      90_000, // the relay's start and rounds are slow on a loaded machine
      'the relay refuses to publish the rewritten heads',
    )
    assert.match(relay.stderr.slice(mark), /deployment\/web@5:rewritten/)
    assert.equal((await latest('acme'))!.seq, junk, 'nothing published after the junk')
    assert.equal((await latest('acme', true))!.seq, before, 'the newest signed heads are still the ones before')

    const r = await runCli(
      ['verify', '--tenant', 'acme', '--against', 'nats', '--public-key', join(dir, 'heads.pub'), '--json'],
      { env: operator() },
    )
    assert.equal(r.code, 2, r.stderr)
    const report = JSON.parse(r.stdout)
    assert.equal(report.intact, false)
    assert.equal(report.against.seq, before, 'checked against the real anchor, not the forged heads')
    assert.deepEqual(
      report.against.skipped.map((s: { seq: number }) => s.seq),
      [junk, forged],
    )
    assert.deepEqual(
      report.breaks.map((b: { stream_id: string; version: number; kind: string }) => [b.stream_id, b.version, b.kind]),
      [['web', 5, 'rewritten']],
    )
    assert.match(r.stderr, /WARNING: skipped 2 newer messages on tenant acme's heads subject/)
    assert.match(r.stderr, /store\.chain_broken: .*rewritten at acme\/deployment\/web version 5/)

    // A one-shot publish with the same key refuses too, unless forced (which says so).
    const refused = await runCli(['heads', '--tenant', 'acme', '--publish', '--sign-key', join(dir, 'heads.key')], {
      env: operator(),
    })
    assert.equal(refused.code, 2, refused.stderr)
    assert.match(failureLine(refused).message, /acme\/deployment\/web version 5 rewritten/)
    assert.equal((await latest('acme'))!.seq, junk)
  })

  test('without --public-key verify takes the forged unsigned heads and says loudly that it did not authenticate them; --require-signed exits 3', async () => {
    const { forged } = await rewrittenAndForged()
    const loose = await runCli(['verify', '--tenant', 'acme', '--against', 'nats', '--json'], { env: operator() })
    // The weakness --require-signed closes: the forged heads vouch for the rewritten history.
    assert.equal(loose.code, 0, loose.stderr)
    const report = JSON.parse(loose.stdout)
    assert.equal(report.against.seq, forged)
    assert.equal(report.against.authenticated, false)
    assert.equal(report.against.authenticity, 'unsigned')
    assert.match(
      loose.stderr,
      /^evtctl: WARNING: authenticity of the heads NOT checked: the heads published on NATS \(EVENTPLANE_HEADS sequence \d+\) are unsigned, so anyone who can publish on eventplane-heads\.acme/m,
    )

    const strict = await runCli(['verify', '--tenant', 'acme', '--against', 'nats', '--require-signed'], {
      env: operator(),
    })
    assert.equal(strict.code, 3, strict.stderr)
    assert.equal(failureLine(strict).code, 'store.chain_unverifiable')
    assert.match(failureLine(strict).message, /--require-signed: no --public-key given/)

    const pinned = await runCli(
      ['verify', '--tenant', 'acme', '--against', 'nats', '--public-key', join(dir, 'heads.pub'), '--require-signed'],
      { env: operator() },
    )
    assert.equal(pinned.code, 2, pinned.stderr)
    assert.doesNotMatch(pinned.stderr, /authenticity of the heads NOT checked/)
  })

  test('a relay publishing heads without --heads-sign-key warns at start that they can be forged; one with a key does not', async () => {
    const readyLine = (stdout: string) =>
      JSON.parse(stdout.split('\n').find((l) => l.includes('"ready":true'))!) as Record<string, unknown>
    const unsignedWarning = (stderr: string) =>
      stderr
        .split('\n')
        .filter((l) => l.includes('"relay.heads_unsigned"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
    // The relay with a key, started in before(): ready, heads signed, no warning.
    const signedReady = await relay.waitFor((out) => out.includes('"ready":true'), 90_000)
    assert.equal(readyLine(signedReady).heads_signed, true)
    assert.deepEqual(unsignedWarning(relay.stderr), [])

    // Of the same name, so it stands by behind that one and publishes nothing: stopped once ready.
    const keyless = startCli(['relay', '--json', '--heads-every-ms', '1000'], { env: relayEnv })
    const ready = await keyless.waitFor((out) => out.includes('"ready":true'), 90_000)
    keyless.child.kill('SIGKILL')
    await keyless.done()
    assert.equal(readyLine(ready).heads_signed, false)
    const [warning, ...more] = unsignedWarning(keyless.stderr)
    assert.equal(more.length, 0, 'one warning')
    assert.equal(warning?.level, 40, 'a warning')
    assert.equal(warning?.relay, DEFAULT_RELAY_NAME)
    assert.equal(warning?.signed, false)
    assert.match(
      String(warning?.msg),
      /heads are published unsigned: anyone with the relay's NATS credentials could publish forged heads; pass --heads-sign-key/,
    )
  })

  test('--against nats needs a tenant, and a tenant without published heads cannot be checked (exit 3)', async () => {
    const noTenant = await runCli(['verify', '--against', 'nats'], { env: operator() })
    assert.equal(noTenant.code, 1, noTenant.stderr)
    const none = await runCli(['verify', '--tenant', 'initech', '--against', 'nats'], { env: operator() })
    assert.equal(none.code, 3, none.stderr)
    assert.match(failureLine(none).message, /no heads of tenant initech were published/)
  })

  test('heads --publish --force re-anchors on the rewritten history and says so on stderr', async () => {
    const { forged } = await rewrittenAndForged()
    const r = await runCli(
      ['heads', '--tenant', 'acme', '--publish', '--force', '--sign-key', join(dir, 'heads.key'), '--json'],
      { env: operator() },
    )
    assert.equal(r.code, 0, r.stderr)
    assert.match(
      r.stderr,
      /^evtctl: WARNING: --force: heads of acme published without checking that the log extends the newest published ones$/m,
    )
    const { published } = JSON.parse(r.stdout) as { published: { seq: number } }
    assert.ok(published.seq > forged, `published after the forgery: ${published.seq}`)
    const pinned = await runCli(
      ['verify', '--tenant', 'acme', '--against', 'nats', '--public-key', join(dir, 'heads.pub'), '--require-signed'],
      { env: operator() },
    )
    assert.equal(pinned.code, 0, pinned.stderr)
  })
})
