import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { type TransactionSql, logStatus } from '@eventplane/store-pg'
import { bulkLoadEvents, createTestDatabase, eventually, type TestDatabase } from '@eventplane/store-pg/testing'
import type { StatusReport } from '../src/commands/status.ts'
import { type CliProcess, failureLine, killAll, pollCli, runCli, startCli } from './helpers.ts'

// A replay is stopped mid-way deterministically: the test inserts, in a transaction it keeps open, the
// state row a later commit of the rebuild will write (same projection, generation, tenant and key). That
// commit waits on the unique index until the test ends its transaction; everything before it is committed.

interface ReplayJson {
  resumed: boolean
  events: number
  events_before: number
  generation: number
  digest: { sha256: string; rows: number }
}

describe('evtctl replay: interrupted rebuilds never serve partial state and resume to the same digest', () => {
  let db: TestDatabase
  let env: Record<string, string>
  const TENANT = 'tenant3'
  /**
   * The log's events: the tests hold a state row up to about 9,000 events into the log (`interruptRebuild`, past
   * where an interrupted rebuild stopped, which may be a commit past its held row), and the swap deletes the
   * previous generation's states 10,000 per transaction: more than 10,000 make it take two. Not more: the file
   * replays the log about four times over.
   */
  const EVENTS = 12_000

  const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await sleep(50)
    }
  }
  const stateVia = (cli: typeof runCli) => async (): Promise<{ stdout: string; stderr: string }> => {
    const r = await cli(['state', 'audit', '--tenant', TENANT, '--json'], { env })
    assert.equal(r.code, 0, r.stderr)
    return { stdout: r.stdout, stderr: r.stderr }
  }
  /** evtctl state, the process: what a reader is served. */
  const stateOf = stateVia(runCli)
  /** The same in this process (pollCli): the output before a rebuild, which what is served later must equal. */
  const stateBefore = stateVia(pollCli)
  const rebuildRow = async () =>
    (
      await db.admin<{ generation: number; events: string }[]>`
        select generation, events::text from eventplane.projection_rebuilds where projection = 'audit'`
    )[0]
  /** The projector's session waiting on a lock in this database: the rebuild's commit is held. */
  const commitHeld = async (): Promise<boolean> =>
    (
      await db.admin<{ n: number }[]>`
        select count(*)::int as n from pg_stat_activity
         where datname = ${db.name} and usename = 'eventplane_projector' and wait_event_type = 'Lock'`
    )[0]!.n > 0

  /**
   * Opens a transaction holding the state row the rebuild of `generation` will write for the event at
   * `offset` in the global order; resolves once it is inserted. `release()` rolls it back.
   */
  const holdStateRow = async (generation: number, offset: number): Promise<{ release(): Promise<void> }> => {
    const [e] = await db.admin<{ tenant_id: string; correlation_id: string }[]>`
      select tenant_id, correlation_id::text from eventplane.events order by tx_id, global_position offset ${offset} limit 1`
    assert.ok(e, `the log has an event at offset ${offset} to hold`)
    let release!: () => void
    const released = new Promise<void>((r) => {
      release = r
    })
    let inserted!: () => void
    const ready = new Promise<void>((r) => {
      inserted = r
    })
    const tx = db.admin
      .begin(async (t: TransactionSql) => {
        await t`insert into eventplane.projection_state (projection, generation, tenant_id, key, state)
                values ('audit', ${generation}, ${e!.tenant_id}, ${e!.correlation_id}, '{}'::jsonb)`
        inserted()
        await released
        throw new Error('rollback')
      })
      .catch(() => {})
    await ready
    return {
      async release() {
        release()
        await tx
      },
    }
  }

  /** The projection's live generation (the checkpoint readers are served from). */
  const liveGeneration = async (): Promise<number> =>
    (
      await db.admin<{ generation: number }[]>`
        select generation from eventplane.projection_checkpoints where projection = 'audit'`
    )[0]!.generation

  /**
   * Interrupts a `replay audit` mid-way, whatever state the tests before left: it starts a new rebuild or resumes
   * the one in progress, holds the state row that run writes `heldAfter` events past where it starts, waits until
   * it committed past its start and waits on that row, and calls `interrupt` while the row is held. Each test
   * calls it for the interrupted rebuild it needs: none relies on one a test before it left.
   */
  const interruptRebuild = async (
    heldAfter: number,
    interrupt: (replay: CliProcess) => Promise<void>,
    args: readonly string[] = [],
  ): Promise<{ replay: CliProcess; eventsBefore: number }> => {
    const resumed = await rebuildRow()
    const eventsBefore = Number(resumed?.events ?? 0)
    const generation = resumed?.generation ?? (await liveGeneration()) + 1
    const held = await holdStateRow(generation, eventsBefore + heldAfter)
    try {
      const replay = startCli(['replay', 'audit', '--commit-every', '1000', ...args], { env })
      await until('the rebuild to commit and then wait on the held row', async () => {
        const row = await rebuildRow()
        return row !== undefined && Number(row.events) > eventsBefore && (await commitHeld())
      })
      await interrupt(replay)
      return { replay, eventsBefore }
    } finally {
      await held.release()
    }
  }
  /** No rebuild in progress: the one a test before left is run to its end. */
  const noRebuildInProgress = async (): Promise<void> => {
    if ((await rebuildRow()) === undefined) return
    const r = await runCli(['replay', 'audit', '--json'], { env, timeoutMs: 180_000 })
    assert.equal(r.code, 0, r.stderr)
  }

  let firstDigest: string

  before(async () => {
    db = await createTestDatabase('ep_cli_replay_int')
    env = { EVENTPLANE_DATABASE_URL: db.url, EVENTPLANE_DOMAIN: '@eventplane/example-deployments' }
    // The gap-safe read waits for older transactions anywhere in the cluster: let it see every event first.
    const readable = () => eventually(async () => (await logStatus(db.admin)).waiting === 0, 120_000, 'events readable')
    await bulkLoadEvents(db.admin, 1, 3000, 40)
    await readable()
    const first = await runCli(['replay', 'audit', '--json'], { env, timeoutMs: 180_000 })
    assert.equal(first.code, 0, first.stderr)
    firstDigest = (JSON.parse(first.stdout) as ReplayJson).digest.sha256
    const output = await stateOf()
    assert.equal(output.stdout.trim().split('\n').length, 300, 'the complete output of 3,000 events')
    // Enough more that a rebuild takes many commits (2,000 events per read, one commit per read).
    await bulkLoadEvents(db.admin, 3001, EVENTS, 40)
    await readable()
  })
  after(async () => {
    killAll()
    await db?.drop()
  })

  test('Ctrl-C mid-replay exits 130 with how to resume, and state keeps serving the previous output with a note', async () => {
    const live = await liveGeneration()
    const previous = await stateBefore()
    const { replay } = await interruptRebuild(
      5000,
      async (running) => {
        // Mid-way, shadow partly written: readers still see the previous complete output.
        const during = await stateOf()
        assert.equal(during.stdout, previous.stdout)
        running.child.kill('SIGINT')
        await running.waitFor((err) => err.includes('replay interrupted'), 60_000, 'stderr')
      },
      ['--log-level', 'warn'],
    )
    const r = await replay.done(120_000)
    assert.equal(r.code, 130, r.stderr)
    const last = r.stderr.trim().split('\n').at(-1)!
    assert.match(last, /^evtctl: cli\.interrupted: replay of audit interrupted at \d+:\d+ after \d+ events;/)
    assert.match(last, /run `evtctl replay audit` to resume/)
    const row = await rebuildRow()
    assert.ok(row && Number(row.events) > 0 && Number(row.events) < EVENTS, `stopped part-way: ${row?.events}`)

    const after = await stateOf()
    assert.equal(after.stdout, previous.stdout, 'state serves the previous complete output')
    assert.match(after.stderr, /^evtctl: note: rebuild of v1 in progress or interrupted \(\d+ events done/m)
    const status = await runCli(['status', '--json', '--no-nats'], { env })
    assert.equal(status.code, 0, status.stderr)
    const audit = (JSON.parse(status.stdout) as StatusReport).projections.find((p) => p.name === 'audit')!
    assert.equal(audit.generation, live)
    assert.equal(audit.rebuild?.events, row!.events)
    // The human status says how far the rebuild got and how much is left.
    const human = await runCli(['status', '--no-nats'], { env })
    assert.equal(human.code, 0, human.stderr)
    const done = `(${row!.events} events done, ${audit.rebuild!.remaining} to go, at ${audit.rebuild!.checkpoint}, `
    assert.ok(human.stdout.includes(`rebuild of v1 in progress or interrupted ${done}`), human.stdout)
  })

  test('SIGKILL mid-replay leaves the previous output serving; the resume matches a rebuild from scratch', async () => {
    const previous = await stateBefore()
    const { eventsBefore } = await interruptRebuild(3000, async (running) => {
      running.child.kill('SIGKILL')
      assert.equal((await running.done()).signal, 'SIGKILL')
    })
    const killed = await rebuildRow()
    assert.ok(killed && Number(killed.events) > eventsBefore && Number(killed.events) < EVENTS)
    assert.equal((await stateOf()).stdout, previous.stdout, 'state serves the previous complete output')

    const resumed = await runCli(['replay', 'audit', '--json'], { env, timeoutMs: 180_000 })
    assert.equal(resumed.code, 0, resumed.stderr)
    const r1 = JSON.parse(resumed.stdout) as ReplayJson
    assert.equal(r1.resumed, true)
    assert.equal(r1.events_before, Number(killed.events))
    assert.equal(r1.events_before + r1.events, EVENTS, 'every event applied once over the runs')
    assert.equal(r1.digest.rows, EVENTS)
    assert.notEqual(r1.digest.sha256, firstDigest)
    assert.equal(await rebuildRow(), undefined, 'the rebuild is done')
    const now = await stateOf()
    assert.equal(now.stdout.trim().split('\n').length, EVENTS / 10, 'the new output is served')
    assert.doesNotMatch(now.stderr, /note/)

    const scratch = await runCli(['replay', 'audit', '--restart', '--json'], { env, timeoutMs: 180_000 })
    assert.equal(scratch.code, 0, scratch.stderr)
    const r2 = JSON.parse(scratch.stdout) as ReplayJson
    assert.equal(r2.resumed, false)
    assert.equal(r2.events, EVENTS)
    assert.equal(r2.digest.sha256, r1.digest.sha256, 'resumed and from-scratch rebuilds have the same digest')
    const [left] = await db.admin<{ n: number }[]>`
      select count(*)::int as n from eventplane.projection_state where projection = 'audit'`
    assert.equal(left!.n, EVENTS, 'older generations are deleted after the swap')
  })

  test('--restart throws an interrupted rebuild away: that run starts from the beginning of the log', async () => {
    await interruptRebuild(5000, async (running) => {
      running.child.kill('SIGKILL')
      await running.done()
    })
    const interrupted = await rebuildRow()
    assert.ok(interrupted && Number(interrupted.events) > 0, 'an interrupted rebuild to throw away')
    const r = await runCli(['replay', 'audit', '--restart', '--json'], { env, timeoutMs: 180_000 })
    assert.equal(r.code, 0, r.stderr)
    const report = JSON.parse(r.stdout) as ReplayJson
    assert.deepEqual([report.resumed, report.events_before, report.events], [false, 0, EVENTS])
    assert.equal(await rebuildRow(), undefined, 'the rebuild is done')
  })

  test('a bad --commit-every is a usage error and starts no rebuild', async () => {
    await noRebuildInProgress()
    const bad = await runCli(['replay', 'audit', '--commit-every', '0'], { env })
    assert.equal(bad.code, 1)
    assert.equal(await rebuildRow(), undefined)
    assert.equal(failureLine(bad).code, 'cli.bad_usage')
  })
})
