import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startNatsServer, type TestNatsServer } from '@eventplane/bus-nats/testing'
import { EventFactory } from '@eventplane/core'
import { jetstreamManager } from '@nats-io/jetstream'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { createTestDatabase, eventually, type TestDatabase } from '@eventplane/store-pg/testing'
import { killAll, startCli } from './helpers.ts'

/** One JSON log line of the relay (stderr, not a terminal). */
type LogLine = { msg?: string; level?: number | string; [key: string]: unknown }
const logLines = (stderr: string): LogLine[] =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine)

// SIGTERM to `evtctl relay` while PostgreSQL holds everything the relay's stop would wait for: a transaction of
// the test locks the log (the relay's reads wait) and the relay's lease row (its release waits). The process
// must stop by itself, cleanly, while those locks are still held: evtctl gives a service command 10 s after the
// signal and exits 130 past that, so an exit 0 here means the relay's stop ended on its own bounds.
describe('evtctl relay: SIGTERM while PostgreSQL holds the log and the lease', () => {
  let db: TestDatabase
  let nats: TestNatsServer

  before(async () => {
    db = await createTestDatabase('ep_cli_relay_sigterm')
    nats = await startNatsServer()
  })
  after(async () => {
    killAll()
    await nats?.stop()
    await db?.drop()
  })

  test('exits 0 with a stopped line while the locks are held; the lease session is gone, the next relay takes over', async (t) => {
    const url = new URL(db.url)
    url.username = ROLES.relay
    const env = {
      EVENTPLANE_DATABASE_URL: url.toString(),
      EVENTPLANE_NATS_URL: nats.url,
      EVENTPLANE_NATS_CREDS: nats.credentials.relay!.creds,
    }
    const relay = startCli(['relay', '--poll-ms', '200'], { env })
    await relay.waitFor((out) => out.startsWith('ready: '), 60_000)
    const holderOf = async (): Promise<number | null> =>
      (
        await db.admin<{ pid: number | null }[]>`select holder_pid as pid from eventplane.relay_leases
        where name = 'default'`
      )[0]?.pid ?? null
    await eventually(async () => (await holderOf()) !== null, 20_000, 'the relay to take its lease')
    const holder = (await holderOf())!
    const s = { tenant: 'acme', category: 'deployment', id: 'sigterm' }
    const f = EventFactory.forTenant('acme', { causedBy: 'user:test' })
    const store = new PgEventStore(db.connect(ROLES.intentWriter, 1), { notifyAppends: false })
    await store.append(s, [f.intent(s, 'scaled', { n: 1 })])

    const tx = await db.admin.reserve()
    try {
      await tx`begin`
      await tx`select 1 from eventplane.relay_leases where name = 'default' for update`
      await tx`lock table eventplane.events in access exclusive mode`
      // The relay polls every 200 ms: its next read waits for the lock.
      await eventually(
        async () =>
          (
            await db.admin`select 1 from pg_stat_activity where datname = ${db.name} and usename = ${ROLES.relay}
              and wait_event_type = 'Lock'`
          ).length > 0,
        20_000,
        "the relay's read to wait for the lock",
      )
      const signalled = performance.now()
      relay.child.kill('SIGTERM')
      const r = await relay.done(30_000)
      const tookMs = Math.round(performance.now() - signalled)
      t.diagnostic(`exit ${tookMs} ms after SIGTERM`)
      assert.equal(
        r.code,
        0,
        `exit 0 (not 130: evtctl's own 10 s limit) while the locks are held: ${r.stderr.slice(-1500)}`,
      )
      assert.match(r.stdout, /^stopped$/m)
      const warnings = logLines(r.stderr)
        .map((l) => l.msg ?? '')
        .filter((m) => m.startsWith('relay stopping'))
      assert.ok(
        warnings.includes(
          'relay stopping: the lease was not released in time; its session was ended instead, which frees the lease',
        ),
        `the release was skipped (${tookMs} ms after SIGTERM): ${warnings.join(' | ')}`,
      )
      await eventually(
        async () => (await db.admin`select 1 from pg_stat_activity where pid = ${holder}`).length === 0,
        10_000,
        "the old lease session's end, while the lock is held",
      )
    } finally {
      await tx`rollback`.catch(() => {})
      tx.release()
    }

    // Nothing acknowledged is lost: the next relay takes the lease and publishes the event.
    const next = startCli(['relay', '--poll-ms', '200'], { env })
    try {
      await next.waitFor((out) => out.startsWith('ready: '), 60_000)
      await eventually(
        async () => ![null, holder].includes(await holderOf()),
        20_000,
        'the next relay to take the lease',
      )
      const nc = await nats.connect('operator')
      const jsm = await jetstreamManager(nc)
      await eventually(
        async () => (await jsm.streams.info('EVENTPLANE')).state.messages === 1,
        20_000,
        'the event in the stream, once',
      )
    } finally {
      next.child.kill('SIGTERM')
      assert.equal((await next.done(30_000)).code, 0)
    }
  })
})
