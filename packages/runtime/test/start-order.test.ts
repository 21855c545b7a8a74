import assert from 'node:assert/strict'
import type { Server } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { PgEventStore, ROLES, type Sql, connectPg, readProjectionStates, roleUrl } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { ProjectionRunner } from '../src/projection/runner.ts'
import { PROJECTOR_ROLE } from '../src/roles.ts'
import { streamCounter } from './fixtures.ts'
import { forward, freePort } from './forwarder.ts'
import { eventually, factoryFor, stream, within } from './helpers.ts'

describe('start order: a projection runner started before PostgreSQL answers', () => {
  let db: TestDatabase
  let runnerSql: Sql | undefined
  let proxy: Server | undefined
  let runner: ProjectionRunner | undefined

  before(async () => {
    db = await createTestDatabase('ep_start_order')
  })
  after(async () => {
    await runner?.stop()
    await runnerSql?.end({ timeout: 1 })
    proxy?.close()
    await db.drop()
  })

  test('waits for the database (retrying, not failing) and catches up once it answers', async () => {
    const web = stream('acme', 'web')
    await new PgEventStore(db.connect(ROLES.intentWriter, 1)).append(web, [
      factoryFor('acme').intent(web, 'created', { n: 1 }),
    ])

    const port = await freePort()
    const target = new URL(roleUrl(db.url, PROJECTOR_ROLE))
    const early = new URL(target)
    early.port = String(port)
    runnerSql = connectPg(early.toString(), { max: 4, connectTimeout: 2 })
    // The runner's own word that it is retrying: the first attempt met a refused connection and did not end it.
    let retrying!: () => void
    const retried = new Promise<void>((resolve) => (retrying = resolve))
    const warn = (_: object, msg?: string) => {
      if (msg === 'projection resyncing from PostgreSQL') retrying()
    }
    runner = new ProjectionRunner({
      projection: streamCounter,
      sql: runnerSql,
      pollIntervalMs: 50,
      retryDelayMs: 20,
      logger: { debug: () => {}, info: () => {}, warn, error: () => {} },
    })
    const started = runner.start()
    const settledEarly = started.then(
      () => 'went live while the database was unreachable',
      (e: unknown) => `failed instead of waiting: ${(e as { code?: string }).code} ${(e as Error).message}`,
    )
    const first = await within(Promise.race([retried.then(() => 'retrying'), settledEarly]), 30_000, 'a retry')
    assert.equal(first, 'retrying')

    proxy = await forward(port, target)
    await within(started, 60_000, 'the runner to go live once the database answers')
    // Polled: the gap-safe read may still be held back by another database's open transaction on this cluster.
    const counts = async () =>
      (await readProjectionStates(db.admin, streamCounter.name, 'acme')).map((s) => [
        s.key,
        (s.state as { count: number }).count,
      ])
    await eventually(async () => (await counts()).length > 0, 120_000, 'the event to be applied')
    assert.deepEqual(await counts(), [['deployment/web', 1]])
  })
})
