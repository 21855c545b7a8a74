import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { ensureStream } from '@eventplane/bus-nats'
import { startNatsServer, type TestNatsServer } from '@eventplane/bus-nats/testing'
import { jetstreamManager } from '@nats-io/jetstream'
import { EventFactory } from '@eventplane/core'
import { PROJECTOR_ROLE } from '@eventplane/runtime'
import { PG_WRITE_AFTER_CLOSE_WARNING, PgEventStore, ROLES } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase, terminateLockWaiter } from '@eventplane/store-pg/testing'
import { killAll, startCli } from './helpers.ts'
import { APPLY_LOCK } from './support/held-apply-domain.ts'

const DOMAIN = fileURLToPath(new URL('./support/held-apply-domain.ts', import.meta.url))

describe('evtctl survives a PostgreSQL session terminated inside a projection commit', () => {
  let db: TestDatabase
  let nats: TestNatsServer

  before(async () => {
    db = await createTestDatabase('ep_cli_pg_terminated')
    nats = await startNatsServer({ withAuth: false })
    // No relay: the events are caught up from PostgreSQL; subscribe only needs the stream for its consumer.
    const nc = await nats.connect()
    await ensureStream(await jetstreamManager(nc))
    await nc.close()
    const s = { tenant: 'acme', category: 'deployment', id: 'web' }
    const f = EventFactory.forTenant('acme', { causedBy: 'user:test' })
    const writer = new PgEventStore(db.connect(ROLES.intentWriter, 1))
    await writer.append(s, [f.intent(s, 'scaled', {}), f.intent(s, 'scaled', {}), f.intent(s, 'scaled', {})])
  })
  after(async () => {
    killAll()
    await nats?.stop()
    await db?.drop()
  })

  test('subscribe <projection>: its session terminated while the apply waits on a lock; one warning, the process resyncs and applies each event once', async () => {
    const env = { EVENTPLANE_DATABASE_URL: db.url, EVENTPLANE_NATS_URL: nats.url }
    const holder = await db.admin.reserve()
    try {
      await holder`select pg_advisory_lock(${APPLY_LOCK})`
      const cli = startCli(['subscribe', 'held_apply', '--domain', DOMAIN, '--json'], { env })
      await terminateLockWaiter(
        db,
        PROJECTOR_ROLE,
        "the projection's apply to wait on the held lock",
        () => cli.child.exitCode !== null,
      )
      assert.equal(cli.child.exitCode, null, cli.stderr)
      await holder`select pg_advisory_unlock(${APPLY_LOCK})`
      await cli.waitFor((out) => out.includes('"ready":true'), 60_000)
      const rows = await db.admin<{ applied: number }[]>`select applied from eventplane_views.held_apply`
      assert.deepEqual(
        rows.map((x) => x.applied),
        [1, 1, 1],
        'each event applied exactly once',
      )
      const warnings = cli.stderr.split('\n').filter((l) => l === `evtctl: warning: ${PG_WRITE_AFTER_CLOSE_WARNING}`)
      assert.equal(
        warnings.length,
        1,
        `the driver's ROLLBACK write failed and was reported once; stderr: ${cli.stderr}`,
      )
      assert.doesNotMatch(cli.stderr, /cli\.internal|TypeError|at nextWrite/)
      assert.equal(cli.child.exitCode, null, 'the process lives on')
      cli.child.kill('SIGINT')
      const done = await cli.done(30_000)
      assert.equal(done.code, 0, done.stderr)
    } finally {
      holder.release()
    }
  })
})
