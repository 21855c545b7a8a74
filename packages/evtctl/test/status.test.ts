import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventFactory } from '@eventplane/core'
import { PgEventStore, ROLES, RelayLease } from '@eventplane/store-pg'
import {
  createTestDatabase,
  eventually,
  holdForeignXid,
  holdXid,
  type TestDatabase,
} from '@eventplane/store-pg/testing'
import type { StatusReport } from '../src/commands/status.ts'
import { type ControllerReport, controllerLines, controllerProblems } from '../src/controller-status.ts'
import { type StreamReport, formatBytes, formatDuration, streamLine, streamProblems } from '../src/stream-status.ts'
import { UNREACHABLE_NATS, UNREACHABLE_PG, failureLine, killAll, pollCli, runCli } from './helpers.ts'

describe('evtctl status (PostgreSQL side)', () => {
  let db: TestDatabase
  let store: PgEventStore
  const env = () => ({ EVENTPLANE_DATABASE_URL: db.url, EVENTPLANE_NATS_URL: UNREACHABLE_NATS })
  const acme = EventFactory.forTenant('acme', { causedBy: 'user:alice' })
  const append = (id: string) =>
    store.append({ tenant: 'acme', category: 'deployment', id }, [
      acme.intent({ category: 'deployment', id }, 'created', {}),
    ])
  const statusVia =
    (cli: typeof runCli) =>
    async (...args: string[]): Promise<StatusReport> => {
      const r = await cli(['status', '--json', ...args], { env: env() })
      assert.equal(r.code, 0, r.stderr)
      return JSON.parse(r.stdout) as StatusReport
    }
  /** evtctl status --json, the process; `polled` is the same in this process, for the polls (see pollCli). */
  const status = statusVia(runCli)
  const polled = statusVia(pollCli)

  before(async () => {
    db = await createTestDatabase('ep_cli_status')
    store = new PgEventStore(db.connect(ROLES.intentWriter, 2))
  })
  after(async () => {
    killAll()
    await db.drop()
  })

  test('an empty log has no head, an idle relay and no projections', async () => {
    const r = await status()
    assert.equal(r.log.head_position, null)
    assert.equal(r.log.waiting, '0')
    assert.deepEqual(
      r.relays.map((x) => [x.name, x.active, x.checkpoint, x.lag]),
      [['default', false, null, '0']],
    )
    assert.deepEqual(r.projections, [])
    assert.equal(r.gateway?.alive, null, 'NATS down does not fail status; the gateway is reported unknown')
    const pgOnly = await runCli(['status', '--json', '--no-nats'], { env: env() })
    assert.equal('gateway' in (JSON.parse(pgOnly.stdout) as object), false)
  })

  test('relay lag is the events after its checkpoint; it is active while a live session holds its lease', async () => {
    const results = []
    for (let i = 0; i < 5; i++) results.push(await append(`s${i}`))
    const second = results[1]!.events[0]!
    const relaySql = db.connect(ROLES.relay, 1)
    const lease = new RelayLease(relaySql, 'default')
    try {
      assert.equal(await lease.tryAcquire(), true)
      assert.equal(await lease.storeCheckpoint({ txId: second.txId, position: second.position }, 'stream-1'), true)
      const holders = await db.admin<{ pid: number }[]>`
        select holder_pid as pid from eventplane.relay_leases where name = 'default'`
      const pid = holders[0]!.pid
      const r = await status()
      assert.equal(r.log.head_position, results[4]!.events[0]!.position.toString())
      const relay = r.relays.find((x) => x.name === 'default')!
      assert.equal(relay.lag, '3')
      assert.equal(relay.checkpoint, `${second.txId}:${second.position}`)
      assert.equal(relay.active, true)
      assert.equal(relay.pid, pid)
      const human = await runCli(['status'], { env: env() })
      assert.match(
        human.stdout,
        new RegExp(
          `^relay +default: active \\(lease held by PostgreSQL session pid ${pid}\\), checkpoint \\d+:\\d+ at \\S+, lag 3$`,
          'm',
        ),
      )
    } finally {
      await lease.close()
    }
    assert.equal((await status()).relays[0]!.active, false)
  })

  test('--relay names the relay shown and checked: one that never ran is listed, not running, and unhealthy', async () => {
    const r = await runCli(['status', '--json', '--no-nats', '--check', '--relay', 'west'], { env: env() })
    assert.equal(r.code, 3, r.stdout)
    const report = JSON.parse(r.stdout) as StatusReport
    const west = report.relays.find((x) => x.name === 'west')
    assert.deepEqual(
      west && [west.active, west.checkpoint, west.pid],
      [false, null, null],
      JSON.stringify(report.relays),
    )
    assert.deepEqual(report.check?.problems, ['relay west is not active (no live session holds its lease)'])
    const human = await runCli(['status', '--no-nats', '--relay', 'west'], { env: env() })
    assert.match(human.stdout, /^relay +west: not running, no checkpoint, lag \d+$/m)
  })

  test('projection checkpoints are listed with their lag', async () => {
    await db.admin`insert into eventplane.projection_checkpoints (projection, version, tx_id, global_position)
                   values ('deployment_status', 2, '0'::xid8, 0)`
    const r = await status()
    const head = BigInt(r.log.head_position!)
    assert.deepEqual(
      r.projections.map((p) => [p.name, p.version, p.checkpoint]),
      [['deployment_status', 2, '0:0']],
    )
    assert.equal(BigInt(r.projections[0]!.lag) > 0n && BigInt(r.projections[0]!.lag) <= head, true)
    const human = await runCli(['status'], { env: env() })
    assert.match(human.stdout, /^projection +deployment_status v2: checkpoint 0:0 at \S+, lag \d+$/m)
  })

  test('shows that and by which transaction the gap-safe read is held back', async () => {
    const { xid, release } = await holdXid(db.admin)
    try {
      await append('late')
      const r = await status()
      assert.ok(Number(r.log.waiting) >= 1, JSON.stringify(r.log))
      assert.ok(r.log.oldest_transaction !== null)
      assert.ok(BigInt(r.log.snapshot_xmin) <= BigInt(xid))
      assert.ok(BigInt(r.log.horizon) <= BigInt(xid), JSON.stringify(r.log))
      const human = await runCli(['status'], { env: env() })
      assert.match(human.stdout, /^held back +\d+ committed events wait behind xid \d+ \(pid \d+/m)
    } finally {
      await release()
    }
  })

  test('lists a transaction holding an xid longer than --stuck-after: pid, role, age, never its query text', async () => {
    let end!: () => void
    const ended = new Promise<void>((resolve) => (end = resolve))
    let holding!: (pid: number) => void
    const held = new Promise<number>((resolve) => (holding = resolve))
    const done = db.connect(ROLES.reader, 1).begin(async (tx) => {
      await tx`set local idle_in_transaction_session_timeout = 0`
      const [row] = await tx.unsafe<{ pid: number }[]>(
        'select pg_backend_pid() as pid, pg_current_xact_id() as status_secret_marker',
      )
      holding(row!.pid)
      await ended
    })
    try {
      const pid = await held
      const listed = (r: StatusReport) => r.log.stuck_transactions.some((t) => t.pid === pid)
      await eventually(
        async () => listed(await polled('--stuck-after', '1000')),
        10_000,
        'the reader to be listed as stuck',
      )
      let report: StatusReport | undefined
      await eventually(
        async () => listed((report = await status('--stuck-after', '1000'))),
        10_000,
        'evtctl to list it',
      )
      const stuck = report!.log.stuck_transactions.find((t) => t.pid === pid)!
      assert.equal(stuck.user, ROLES.reader)
      assert.equal(stuck.database, db.name)
      assert.ok(stuck.age_ms !== null && stuck.age_ms > 1000, `age ${stuck.age_ms}`)
      assert.equal(report!.log.stuck_after_ms, 1000)
      const human = await runCli(['status', '--stuck-after', '1000'], { env: env() })
      assert.match(
        human.stdout,
        new RegExp(
          `^stuck +xid \\d+ \\(pid ${pid}, database ${db.name}, user ${ROLES.reader}, .*\\): open longer than 1 s$`,
          'm',
        ),
      )
      assert.doesNotMatch(JSON.stringify(report) + human.stdout, /status_secret_marker/)
      assert.equal(
        (await status()).log.stuck_transactions.some((t) => t.pid === pid),
        false,
        'not stuck under the default bound (30 s)',
      )
    } finally {
      end()
      await done
    }
  })

  test("another database's older transaction is shown as elsewhere, never as oldest, holding or stuck; this database's is", async () => {
    const theirs = await holdForeignXid('ep_cli_status_other')
    try {
      await append('before-mine')
      const mine = await holdXid(db.admin)
      try {
        await append('behind-mine')
        let r: StatusReport | undefined
        const holding = (s: StatusReport) =>
          s.log.stuck_transactions.some((t) => t.pid === mine.pid) && s.log.holding_transaction?.pid === mine.pid
        // Polled for the age (past --stuck-after) and for this database's autovacuum, which may hold an xid a moment.
        await eventually(
          async () => holding(await polled('--stuck-after', '1000')),
          30_000,
          'this database’s transaction to hold the read back past the bound',
        )
        await eventually(async () => holding((r = await status('--stuck-after', '1000'))), 30_000, 'evtctl to see it')
        const log = r!.log
        assert.ok(BigInt(log.snapshot_xmin) <= BigInt(theirs.xid), 'the cluster is held back by the other database')
        assert.equal(log.oldest_transaction?.pid, mine.pid, 'the older one elsewhere is not the oldest holding the log')
        assert.equal(log.oldest_transaction?.database, db.name)
        assert.deepEqual(
          log.stuck_transactions.map((t) => t.pid).filter((pid) => pid === theirs.pid),
          [],
          'never stuck, though older than the bound',
        )
        // Listed (other suites' or helpers' databases on a shared server may have older ones).
        const listed = log.other_database_transactions.find((t) => t.pid === theirs.pid)
        assert.deepEqual([listed?.kind, listed?.database], ['session', theirs.db.name])
        assert.equal(
          log.other_database_transactions.some((t) => t.database === db.name),
          false,
          'none of this database',
        )
        const human = await runCli(['status', '--stuck-after', '1000'], { env: env() })
        assert.match(
          human.stdout,
          /^elsewhere +\d+ transactions? of other databases, not holding this log back; oldest xid \d+ \(pid \d+/m,
        )
        assert.doesNotMatch(human.stdout, new RegExp(`^stuck +xid \\d+ \\(pid ${theirs.pid},`, 'm'))
      } finally {
        await mine.release()
      }
    } finally {
      await theirs.drop()
    }
  })

  test('--check with NATS unreachable is unhealthy: the gateway cannot be probed (exit 3, a check line)', async () => {
    const r = await runCli(['status', '--check', '--json'], { env: env() })
    assert.equal(r.code, 3, r.stderr)
    const report = JSON.parse(r.stdout) as StatusReport
    assert.equal(report.gateway?.alive, null)
    assert.equal(report.check?.healthy, false)
    assert.ok(
      report.check?.problems.some((p) => p.startsWith('the gateway is not answering: ')),
      JSON.stringify(report.check?.problems),
    )
    // In text, the gateway line says no connection was made and why (unreachable here; refused credentials alike).
    const text = await runCli(['status'], { env: env() })
    const line = text.stdout.split('\n').find((l) => l.startsWith('gateway '))
    assert.match(line ?? '', /^gateway +unknown \(no NATS connection\): \S/, text.stdout)
    assert.equal(line, `gateway     unknown (no NATS connection): ${report.gateway?.detail}`)
    const pgOnly = await runCli(['status', '--check', '--no-nats', '--json'], { env: env() })
    const problems = (JSON.parse(pgOnly.stdout) as StatusReport).check?.problems ?? []
    assert.ok(!problems.some((p) => p.includes('gateway')), JSON.stringify(problems))
  })

  test('an unreachable server is exit 3; an unknown operator role is exit 4', async () => {
    const down = await runCli(['status'], { env: { EVENTPLANE_DATABASE_URL: UNREACHABLE_PG } })
    assert.equal(down.code, 3)
    assert.equal(failureLine(down).code, 'store.unavailable')
    const url = new URL(db.url)
    url.username = 'evtctl_no_such_operator'
    const denied = await runCli(['status'], { env: { ...env(), EVENTPLANE_DATABASE_URL_OPERATOR: url.toString() } })
    assert.equal(denied.code, 4)
    assert.equal(failureLine(denied).code, 'store.auth_failed')
  })

  test('a database without the eventplane schema says to run migrate (exit 3)', async () => {
    const bare = await createTestDatabase('ep_cli_status_bare', { migrate: false })
    try {
      const r = await runCli(['status'], { env: { EVENTPLANE_DATABASE_URL: bare.url } })
      assert.equal(r.code === 3 || r.code === 4, true, r.stderr)
      assert.match(failureLine(r).message, /migrate|does not exist|denied/)
    } finally {
      await bare.drop()
    }
  })
})

describe('the controllers section: its lines and what --check finds wrong', () => {
  const c = (name: string, lag: number | null, waiting_pulls: number | null = 1): ControllerReport => ({
    name,
    consumer: `ctl_${name}`,
    found: lag !== null,
    expected: true,
    lag: lag === null ? null : String(lag),
    pending: lag === null ? null : String(lag),
    ack_pending: lag === null ? null : '0',
    waiting_pulls,
  })

  test('NATS not asked: the lag is unknown, a problem, whatever the list', () => {
    const r = { unknown: 'NATS at nats://h:4222 is unreachable', domain: 'd', list: [] }
    assert.deepEqual(controllerProblems(r, 10), ['controller lag unknown: NATS at nats://h:4222 is unreachable'])
    assert.deepEqual(controllerLines(r), ['controllers unknown: NATS at nats://h:4222 is unreachable'])
  })

  test('no consumer yet, a lag at the bound and above it, a consumer no runner pulls from', () => {
    const none = { unknown: null, domain: null, list: [] }
    assert.deepEqual(controllerProblems(none, 0), [])
    assert.deepEqual(controllerLines(none), ['controllers none yet (no ctl_* consumer)'])
    const r = { unknown: null, domain: 'd', list: [c('a', 5), c('b', 6, 0), c('gone', null)] }
    assert.deepEqual(controllerProblems(r, 5), [
      'controller b lags 6 events (more than 5)',
      'controller gone has no consumer ctl_gone (never started, or the consumer was deleted)',
    ])
    assert.deepEqual(controllerLines(r), [
      'controller  a (ctl_a): lag 5 (5 pending, 0 unacknowledged)',
      'controller  b (ctl_b): lag 6 (6 pending, 0 unacknowledged), no pull waiting (is a runner attached?)',
      'controller  gone: no consumer ctl_gone (never started, or deleted)',
    ])
  })
})

describe('the stream section: its line and what --check finds wrong', () => {
  const s = (bytes: number | null, maxBytes: number | null, maxAgeMs: number | null = null): StreamReport => ({
    name: 'EVENTPLANE',
    unknown: null,
    found: true,
    messages: '7',
    bytes: bytes === null ? null : String(bytes),
    max_bytes: maxBytes === null ? null : String(maxBytes),
    fill_percent: bytes === null || maxBytes === null ? null : Math.floor((bytes * 10_000) / maxBytes) / 100,
    max_age_ms: maxAgeMs,
  })

  test('exactly at the bound is a problem, one byte below is not; no max_bytes is never full', () => {
    assert.deepEqual(streamProblems(s(900, 1000), 90), [
      'stream EVENTPLANE is 90% full (900 of 1000 bytes, at or above 90%): once full the relay stops publishing for every tenant',
    ])
    // 89.99 %: shown rounded down, and not yet at the bound.
    assert.deepEqual(streamProblems(s(8999, 10_000), 90), [])
    assert.deepEqual(streamProblems(s(10_000, 10_000), 100).length, 1)
    assert.deepEqual(streamProblems(s(5 * 1024 ** 4, null), 1), [])
  })

  test('NATS unable to tell and a missing stream are problems, each one line', () => {
    const unknown = { ...s(null, null), unknown: 'NATS at nats://h:4222 is unreachable', found: false }
    assert.deepEqual(streamProblems(unknown, 90), [
      'stream EVENTPLANE state unknown: NATS at nats://h:4222 is unreachable',
    ])
    assert.equal(streamLine(unknown), 'stream      EVENTPLANE unknown: NATS at nats://h:4222 is unreachable')
    const missing = { ...s(null, null), found: false }
    assert.deepEqual(streamProblems(missing, 90), [
      'stream EVENTPLANE does not exist (the relay creates it when it starts)',
    ])
    assert.equal(streamLine(missing), 'stream      EVENTPLANE does not exist (the relay creates it when it starts)')
  })

  test('the line: fill, bytes of max_bytes in binary units, messages, max_age when set', () => {
    const gib = 1024 ** 3
    assert.equal(
      streamLine(s(3 * gib + gib / 2, 4 * gib, 7 * 86_400_000 + 3_600_000)),
      `stream      EVENTPLANE: 87.5% full, ${3.5 * gib} of ${4 * gib} bytes (3.5 GiB of 4.0 GiB), 7 messages, max_age 7d1h`,
    )
    assert.equal(streamLine(s(512, null)), 'stream      EVENTPLANE: 512 bytes (512 B), no max_bytes limit, 7 messages')
    assert.deepEqual(
      [formatBytes(1023), formatBytes(1536), formatBytes(5 * 1024 ** 4)],
      ['1023 B', '1.5 KiB', '5.0 TiB'],
    )
    assert.deepEqual([formatDuration(90_000), formatDuration(3_600_000), formatDuration(500)], ['1m30s', '1h', '500ms'])
  })
})
