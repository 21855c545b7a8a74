import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { EventFactory } from '@eventplane/core'
import { PgEventStore, ROLES, headsDigest } from '@eventplane/store-pg'
import { createTestDatabase, eventually, type TestDatabase } from '@eventplane/store-pg/testing'
import { type CliResult, UNREACHABLE_PG, failureLine, killAll, runCli } from './helpers.ts'

const pem = (k: { export(o: object): string | Buffer }, type: string) => k.export({ type, format: 'pem' }) as string

describe('evtctl heads and verify', () => {
  let db: TestDatabase
  let dir: string
  const env = () => ({ EVENTPLANE_DATABASE_URL: db.url })
  const keys = generateKeyPairSync('ed25519')
  const other = generateKeyPairSync('ed25519')

  before(async () => {
    db = await createTestDatabase('ep_cli_chain')
    dir = await mkdtemp(join(tmpdir(), 'ep-cli-chain-'))
    await writeFile(join(dir, 'heads.key'), pem(keys.privateKey, 'pkcs8'), { mode: 0o600 })
    await writeFile(join(dir, 'heads.pub'), pem(keys.publicKey, 'spki'))
    await writeFile(join(dir, 'other.pub'), pem(other.publicKey, 'spki'))
    const store = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    for (const tenant of ['acme', 'globex']) {
      const f = EventFactory.forTenant(tenant, { causedBy: 'user:test' })
      for (const id of ['web', 'api']) {
        const s = { tenant, category: 'deployment', id }
        for (let i = 0; i < 3; i++) await store.append(s, [f.intent(s, 'scaled', { replicas: i })])
      }
    }
  })
  after(async () => {
    killAll()
    await Promise.all([db?.drop(), rm(dir, { recursive: true, force: true })])
  })

  test('heads are signed and written with the position they cover; verify against them is exit 0', async () => {
    const file = join(dir, 'acme-heads.json')
    const [{ pos }] = (await db.admin`
      select max(global_position)::text as pos from eventplane.events where tenant_id = 'acme'`) as [{ pos: string }]
    // Heads cover what the gap-safe read can return: a transaction open elsewhere in the cluster holds them back.
    let r: CliResult | undefined
    await eventually(async () => {
      r = await runCli(
        ['heads', '--tenant', 'acme', '--sign-key', join(dir, 'heads.key'), '--output', file, '--json'],
        { env: env() },
      )
      assert.equal(r.code, 0, r.stderr)
      return JSON.parse(r.stdout).global_position === pos
    })
    const heads = JSON.parse(await readFile(file, 'utf8'))
    assert.deepEqual(JSON.parse(r!.stdout), heads)
    assert.equal(heads.tenant, 'acme')
    assert.equal(heads.global_position, pos)
    assert.deepEqual(
      heads.streams.map((s: { stream_id: string; version: number }) => [s.stream_id, s.version]),
      [
        ['api', 3],
        ['web', 3],
      ],
    )
    const streams = heads.streams.map((s: { hash: string }) => ({ ...s, hash: Buffer.from(s.hash, 'hex') }))
    assert.equal(heads.digest, headsDigest(streams).toString('hex'))
    assert.equal(heads.signature.algorithm, 'ed25519')

    const ok = await runCli(['verify', '--tenant', 'acme', '--against', file, '--public-key', join(dir, 'heads.pub')], {
      env: env(),
    })
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(ok.stdout, /^intact: 6 events in 2 streams checked in .*; against heads at position \d+ signed by/m)
  })

  test('verify against heads it cannot authenticate says so on stderr and in --json; --require-signed exits 3', async () => {
    const signed = join(dir, 'acme-heads.json')
    const unsigned = join(dir, 'acme-unsigned.json')
    const taken = await runCli(['heads', '--tenant', 'acme', '--output', unsigned], { env: env() })
    assert.equal(taken.code, 0, taken.stderr)
    const pub = join(dir, 'heads.pub')
    const verify = async (...args: string[]) => {
      const r = await runCli(['verify', '--tenant', 'acme', ...args], { env: env() })
      return { ...r, report: r.code === 0 && args.includes('--json') ? JSON.parse(r.stdout) : undefined }
    }
    const notChecked = /^evtctl: WARNING: authenticity of the heads NOT checked: /m

    const bare = await verify('--against', unsigned, '--json')
    assert.equal(bare.code, 0, bare.stderr)
    assert.match(bare.stderr, notChecked)
    assert.match(bare.stderr, /are unsigned, so anyone who could write .*acme-unsigned\.json could have made them/)
    assert.equal(bare.report.against.authenticated, false)
    assert.equal(bare.report.against.authenticity, 'unsigned')
    const human = await verify('--against', unsigned)
    assert.equal(human.code, 0, human.stderr)
    assert.match(human.stdout, /^intact: .*\(unsigned\), authenticity NOT checked/m)

    const unpinned = await verify('--against', signed, '--json')
    assert.equal(unpinned.code, 0, unpinned.stderr)
    assert.match(unpinned.stderr, /are signed by key \S+, but no --public-key was given/)
    assert.equal(unpinned.report.against.authenticated, false)
    assert.equal(unpinned.report.against.authenticity, 'no_public_key')
    assert.ok(unpinned.report.against.signed_by)

    const pinned = await verify('--against', signed, '--public-key', pub, '--require-signed', '--json')
    assert.equal(pinned.code, 0, pinned.stderr)
    assert.doesNotMatch(pinned.stderr, /WARNING/)
    assert.equal(pinned.report.against.authenticated, true)
    assert.equal(pinned.report.against.authenticity, 'public_key')

    for (const file of [signed, unsigned]) {
      const strict = await verify('--against', file, '--require-signed')
      assert.equal(strict.code, 3, strict.stderr)
      assert.equal(failureLine(strict).code, 'store.chain_unverifiable')
      assert.match(failureLine(strict).message, /--require-signed: no --public-key given/)
      assert.equal(strict.stdout, '', 'no verdict printed')
    }
    const unsignedPinned = await verify('--against', unsigned, '--public-key', pub, '--require-signed')
    assert.equal(unsignedPinned.code, 3, unsignedPinned.stderr)
    assert.match(failureLine(unsignedPinned).message, /not signed by the given public key/)
    assert.equal((await verify('--require-signed')).code, 1, '--require-signed without --against is bad usage')
  })

  test('heads that were edited or signed by another key cannot be checked against: exit 3', async () => {
    const file = join(dir, 'acme-heads.json')
    const pinnedToOther = await runCli(
      ['verify', '--tenant', 'acme', '--against', file, '--public-key', join(dir, 'other.pub')],
      { env: env() },
    )
    assert.equal(pinnedToOther.code, 3)
    assert.match(failureLine(pinnedToOther).message, /not signed by the given public key/)
    const heads = JSON.parse(await readFile(file, 'utf8'))
    heads.streams[0].version = 2
    const edited = join(dir, 'edited-heads.json')
    await writeFile(edited, JSON.stringify(heads))
    const r = await runCli(['verify', '--tenant', 'acme', '--against', edited], { env: env() })
    assert.equal(r.code, 3)
    assert.equal(failureLine(r).code, 'store.chain_unverifiable')
    assert.match(failureLine(r).message, /digest does not match/)
  })

  test('a heads file or public key that cannot be read is exit 3 (could not check), naming the file', async () => {
    const missing = join(dir, 'missing-heads.json')
    const noHeads = await runCli(['verify', '--tenant', 'acme', '--against', missing], { env: env() })
    assert.equal(noHeads.code, 3, noHeads.stderr)
    assert.deepEqual(failureLine(noHeads), {
      code: 'store.chain_unverifiable',
      message: `cannot read the heads file ${missing}`,
    })
    const missingKey = join(dir, 'missing.pub')
    const noKey = await runCli(
      ['verify', '--tenant', 'acme', '--against', join(dir, 'acme-heads.json'), '--public-key', missingKey],
      { env: env() },
    )
    assert.equal(noKey.code, 3, noKey.stderr)
    assert.deepEqual(failureLine(noKey), {
      code: 'store.chain_unverifiable',
      message: `cannot read the public key ${missingKey}`,
    })
  })

  test('heads of another tenant than --tenant are refused before anything is checked: exit 1 naming both', async () => {
    const r = await runCli(['verify', '--tenant', 'globex', '--against', join(dir, 'acme-heads.json')], { env: env() })
    assert.equal(r.code, 1, r.stderr)
    const failure = failureLine(r)
    assert.equal(failure.code, 'cli.bad_usage')
    assert.equal(failure.message, "the heads file is tenant acme's, not globex's")
  })

  test('--stream needs a tenant and the form category/id: exit 1', async () => {
    for (const args of [
      ['--stream', 'deployment/web'],
      ['--tenant', 'acme', '--stream', 'web'],
    ]) {
      const r = await runCli(['verify', ...args], { env: env() })
      assert.equal(r.code, 1, r.stderr)
      assert.deepEqual(failureLine(r), {
        code: 'cli.bad_usage',
        message: '--stream needs --tenant and the form category/id',
      })
    }
  })

  test('an unreachable database is exit 3 (could not check)', async () => {
    const r = await runCli(['verify', '--tenant', 'acme'], { env: { EVENTPLANE_DATABASE_URL: UNREACHABLE_PG } })
    assert.equal(r.code, 3)
  })

  test('a changed payload is exit 2, naming the stream, version and event (--json for machines)', async () => {
    await db.admin.unsafe('alter table eventplane.events disable trigger events_no_update_delete')
    const [{ event_id }] = (await db.admin`
      update eventplane.events set data = '{"replicas": 7}'
       where tenant_id = 'globex' and stream_id = 'api' and stream_version = 2 returning event_id`) as [
      { event_id: string },
    ]
    await db.admin.unsafe('alter table eventplane.events enable trigger events_no_update_delete')
    const r = await runCli(['verify', '--json'], { env: env() })
    assert.equal(r.code, 2, r.stderr)
    const report = JSON.parse(r.stdout)
    assert.equal(report.intact, false)
    assert.equal(report.events, 12)
    assert.deepEqual(
      report.breaks.map((b: Record<string, unknown>) => [b.kind, b.tenant, b.stream_id, b.version, b.event_id]),
      [['changed', 'globex', 'api', 2, event_id]],
    )
    assert.match(
      r.stderr,
      /^evtctl: store\.chain_broken: 1 streams have a broken hash chain \(first: changed at globex\/deployment\/api version 2\)\n$/,
    )
    const acme = await runCli(['verify', '--tenant', 'acme'], { env: env() })
    assert.equal(acme.code, 0, 'another tenant is not affected')
  })
})
