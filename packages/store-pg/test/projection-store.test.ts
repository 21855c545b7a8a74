import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import { EventFactory, START } from '@eventplane/core'
import {
  type AppendedEvent,
  PgEventStore,
  ROLES,
  countEventsAfter,
  deleteStaleProjectionStates,
  ensureProjectionCheckpoint,
  lockProjectionCheckpoint,
  projectionRebuildProgress,
  readProjectionCheckpoint,
  readProjectionStates,
  saveProjectionStates,
  scanProjectionStates,
  startProjectionRebuild,
  swapProjectionRebuild,
  writeProjectionCheckpoint,
  withTenant,
  writeProjectionRebuild,
} from '@eventplane/store-pg'
import { eventually, useTestDatabase } from '@eventplane/store-pg/testing'
import type { Sql, TransactionSql } from 'postgres'
import { deleteStaleProjectionStatesSql } from '../src/sql/projection-states-delete.ts'

const at = (tx: number, position: number) => ({ txId: BigInt(tx), position: BigInt(position) })
const states = (tenant: string, keys: string[], state: unknown) => keys.map((key) => ({ tenant, key, state }))

describe('projection checkpoints, generations and rebuilds in the store', () => {
  const db = useTestDatabase('ep_projection_store')
  let projector: Sql

  before(() => {
    projector = db.connect(ROLES.projector, 4)
  })

  test('a rebuild counts its events over every run; resumed keeps its generation, restart takes a new one', async () => {
    await ensureProjectionCheckpoint(projector, 'counted', 1)
    const first = await projector.begin((tx) => startProjectionRebuild(tx, 'counted', 1, false))
    assert.equal(first.resumed, false)
    assert.equal(first.generation, 2, 'above the live generation 1')
    await projector.begin((tx) => writeProjectionRebuild(tx, 'counted', first.generation, at(10, 3), 3))
    await projector.begin((tx) => writeProjectionRebuild(tx, 'counted', first.generation, at(11, 7), 4))
    const resumed = await projector.begin((tx) => startProjectionRebuild(tx, 'counted', 1, false))
    assert.equal(resumed.resumed, true)
    assert.equal(resumed.generation, first.generation)
    assert.equal(resumed.events, 7)
    assert.deepEqual(resumed.checkpoint, at(11, 7))
    const restarted = await projector.begin((tx) => startProjectionRebuild(tx, 'counted', 1, true))
    assert.equal(restarted.resumed, false)
    assert.equal(restarted.generation, 3)
    assert.equal(restarted.events, 0)
    assert.deepEqual(restarted.checkpoint, at(0, 0))
  })

  test('the swap makes the rebuild live with its checkpoint, version and generation, and forgets it', async () => {
    await ensureProjectionCheckpoint(projector, 'swapped', 1)
    await projector.begin((tx) => writeProjectionCheckpoint(tx, 'swapped', 1, at(20, 40)))
    const r = await projector.begin((tx) => startProjectionRebuild(tx, 'swapped', 2, false))
    await projector.begin((tx) => writeProjectionRebuild(tx, 'swapped', r.generation, at(15, 30), 30))
    await projector.begin((tx) => swapProjectionRebuild(tx, 'swapped', r.generation))
    assert.deepEqual(await readProjectionCheckpoint(projector, 'swapped'), {
      version: 2,
      generation: r.generation,
      checkpoint: at(15, 30),
    })
    assert.equal(await projectionRebuildProgress(projector, 'swapped'), undefined)
  })

  test('stale states go in batches of any size; the live and the rebuilding generations stay', async () => {
    await ensureProjectionCheckpoint(projector, 'tidy', 1)
    await projector.begin(async (tx) => {
      await saveProjectionStates(tx, 'tidy', 1, states('acme', ['live-a', 'live-b'], { n: 1 }))
    })
    const stale = await projector.begin((tx) => startProjectionRebuild(tx, 'tidy', 1, false))
    await projector.begin((tx) =>
      saveProjectionStates(tx, 'tidy', stale.generation, states('acme', ['s1', 's2', 's3', 's4', 's5'], 0)),
    )
    const current = await projector.begin((tx) => startProjectionRebuild(tx, 'tidy', 1, true))
    await projector.begin((tx) => saveProjectionStates(tx, 'tidy', current.generation, states('acme', ['r1'], 2)))
    // One statement deletes at most its batch (mutation audit 2026-12-02, mutrand2: matching rows by tenant
    // and generation only, not key, deleted a tenant's whole generation in one transaction, unseen).
    assert.equal(await deleteStaleProjectionStatesSql(projector, 'tidy', 2), 2, 'one batch: two rows')
    assert.equal(await deleteStaleProjectionStates(projector, 'tidy', 2), 3)
    const left = await db.admin<{ generation: number; key: string }[]>`
      select generation, key from eventplane.projection_state where projection = 'tidy' order by generation, key`
    assert.deepEqual(
      left.map((s) => `${s.generation}:${s.key}`),
      ['1:live-a', '1:live-b', `${current.generation}:r1`],
    )
  })

  test("a scan of a rebuild's generation reads that generation, not the live one", async () => {
    await ensureProjectionCheckpoint(projector, 'scanned', 1)
    await projector.begin((tx) => saveProjectionStates(tx, 'scanned', 1, states('acme', ['k'], 'live')))
    const r = await projector.begin((tx) => startProjectionRebuild(tx, 'scanned', 1, false))
    await projector.begin((tx) => saveProjectionStates(tx, 'scanned', r.generation, states('acme', ['k'], 'rebuilt')))
    const scan = async (generation?: number) => {
      const out: string[] = []
      for await (const batch of scanProjectionStates(projector, 'scanned', 10, generation))
        out.push(...batch.map((s) => s.state))
      return out
    }
    assert.deepEqual(await scan(), ['"live"'])
    assert.deepEqual(await scan(r.generation), ['"rebuilt"'])
  })

  test("a second writer's lock of the checkpoint waits for the first writer's commit and reads what it wrote", async () => {
    await ensureProjectionCheckpoint(projector, 'locked', 1)
    let open!: () => void
    const gate = new Promise<void>((resolve) => {
      open = resolve
    })
    let locked!: () => void
    const firstLocked = new Promise<void>((resolve) => {
      locked = resolve
    })
    const first = projector.begin(async (tx) => {
      await lockProjectionCheckpoint(tx, 'locked')
      locked()
      await gate
      await writeProjectionCheckpoint(tx, 'locked', 1, at(5, 9))
    })
    await firstLocked
    let secondPid = 0
    let secondDone = false
    const second = projector.begin(async (tx) => {
      const [row] = await tx<{ pid: number }[]>`select pg_backend_pid() as pid`
      secondPid = row!.pid
      return lockProjectionCheckpoint(tx, 'locked')
    })
    void second.then(() => {
      secondDone = true
    })
    await eventually(
      async () => {
        assert.equal(secondDone, false, 'the second lock returned while the first writer held the row')
        if (secondPid === 0) return false
        const [a] = await db.admin<{ wait: string | null }[]>`
          select wait_event_type as wait from pg_stat_activity where pid = ${secondPid}`
        return a?.wait === 'Lock'
      },
      10_000,
      'the second writer to wait on the row lock',
    )
    open()
    await first
    assert.deepEqual((await second)?.checkpoint, at(5, 9))
  })

  test('countEventsAfter counts the events after a checkpoint, of every tenant or of one (a tenant projection’s lag)', async () => {
    const writer = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    const appended: Record<string, AppendedEvent[]> = {}
    for (const [tenant, n] of [
      ['acme', 2],
      ['globex', 3],
    ] as const) {
      const s = { tenant, category: 'deployment', id: 'counted' }
      const f = EventFactory.forTenant(tenant, { causedBy: 'user:test' })
      appended[tenant] = (
        await writer.append(
          s,
          Array.from({ length: n }, (_, i) => f.intent(s, 'noted', { i })),
        )
      ).events
    }
    const first = appended.acme![0]!
    const operator = db.connect(ROLES.operator, 1)
    assert.deepEqual(
      {
        all: await countEventsAfter(operator, START),
        acme: await countEventsAfter(operator, START, 'acme'),
        globex: await countEventsAfter(operator, START, 'globex'),
        acmeAfterFirst: await countEventsAfter(operator, { txId: first.txId, position: first.position }, 'acme'),
      },
      { all: 5, acme: 2, globex: 3, acmeAfterFirst: 1 },
    )
  })

  test('readProjectionStates gives one tenant’s live states to any role, the operator (who reads every tenant) too', async () => {
    await projector.begin((tx) =>
      saveProjectionStates(tx, 'shared', 1, [
        ...states('acme', ['a1', 'a2'], { n: 1 }),
        ...states('globex', ['g1'], { n: 2 }),
      ]),
    )
    const seen: Record<string, string[]> = {}
    for (const role of [ROLES.reader, ROLES.operator]) {
      seen[role] = (await readProjectionStates(db.connect(role, 1), 'shared', 'acme')).map((s) => s.key)
    }
    assert.deepEqual(seen, { [ROLES.reader]: ['a1', 'a2'], [ROLES.operator]: ['a1', 'a2'] })
  })

  test('the reader and the operator see only the live generation of projection_state; the projector sees every one', async () => {
    // No checkpoint yet: generation 1 is live, 2 is a rebuild's.
    await projector.begin((tx) => saveProjectionStates(tx, 'generations', 1, states('acme', ['live'], { g: 1 })))
    await projector.begin((tx) => saveProjectionStates(tx, 'generations', 2, states('acme', ['shadow'], { g: 2 })))
    const rows = (sql: Sql | TransactionSql) =>
      sql<{ row: string }[]>`
        select generation || ':' || key as row from eventplane.projection_state
         where projection = 'generations' order by generation, key`.then((r) => r.map((x) => x.row))
    assert.deepEqual(
      {
        reader: await withTenant(db.connect(ROLES.reader, 1), 'acme', rows),
        operator: await rows(db.connect(ROLES.operator, 1)),
        projector: await rows(projector),
      },
      { reader: ['1:live'], operator: ['1:live'], projector: ['1:live', '2:shadow'] },
    )
  })

  test("a tenant's reader sees through projection_state only its own tenant's rows, and none without a tenant set", async () => {
    // Row level security alone (tenant_read, 0012): the statement names no tenant.
    await projector.begin((tx) =>
      saveProjectionStates(tx, 'isolated', 1, [
        ...states('acme', ['a'], { n: 1 }),
        ...states('globex', ['g'], { n: 2 }),
      ]),
    )
    const reader = db.connect(ROLES.reader, 1)
    const keys = async (sql: Sql | TransactionSql) => {
      const rows = await sql<{ key: string }[]>`
        select key from eventplane.projection_state where projection = 'isolated' order by key`
      return rows.map((x) => x.key)
    }
    assert.deepEqual(
      {
        acme: await withTenant(reader, 'acme', keys),
        globex: await withTenant(reader, 'globex', keys),
        none: await keys(reader),
      },
      { acme: ['a'], globex: ['g'], none: [] },
    )
  })

  test("a rebuild's progress is readable by the roles that read state: the reader (no grant on the table) too", async () => {
    await ensureProjectionCheckpoint(projector, 'progressed', 1)
    const r = await projector.begin((tx) => startProjectionRebuild(tx, 'progressed', 2, false))
    await projector.begin((tx) => writeProjectionRebuild(tx, 'progressed', r.generation, at(12, 5), 5))
    for (const role of [ROLES.reader, ROLES.operator, ROLES.projector]) {
      const progress = await projectionRebuildProgress(db.connect(role, 1), 'progressed')
      assert.equal(progress?.generation, r.generation, role)
      assert.equal(progress?.events, 5, role)
      assert.deepEqual(progress?.checkpoint, at(12, 5), role)
    }
  })
})
