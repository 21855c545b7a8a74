import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { ROLES } from '@eventplane/store-pg'
import { jetstreamManager } from '@nats-io/jetstream'
import { Relay } from '../src/relay.ts'
import { appendIntents, eventually, pgLog, streamCount, useBusEnv, within } from './fixtures.ts'

// The lease itself (the fence, the takeover) is store-pg's (relay-lease.test.ts); this is the relay's use of it.
describe('relay: a lost lease', () => {
  const env = useBusEnv('ep_relay_lease_loss')

  test('an idle relay whose lease session is gone stands by within its poll interval, and the standby publishes', async () => {
    const nc = await env.natsAs('relay')
    const make = () => new Relay({ sql: env.db.connect(ROLES.relay, 2), nc, name: 'lease', pollIntervalMs: 200 })
    const a = make()
    const b = make()
    a.start()
    try {
      await eventually(() => a.state === 'active', 'A active')
      b.start()
      await eventually(() => b.state === 'standby', 'B standing by')
      const [row] = await env.db.admin<{ pid: number }[]>`
        select holder_pid as pid from eventplane.relay_leases where name = 'lease'`
      assert.ok(row?.pid, 'the lease names a session')
      // A has nothing to publish, so no checkpoint write of its own can tell it: only its lease check.
      await env.db.admin`select pg_terminate_backend(${row.pid}::int)`
      await eventually(() => b.state === 'active', 'B takes over', 15_000)
      await eventually(() => a.state === 'standby', 'A stands by (not active beside B)', 15_000)
      const [event] = await appendIntents(env.intents, 'acme', 1, 1, 'after')
      const jsm = await jetstreamManager(nc)
      await eventually(async () => (await streamCount(jsm)) === (await pgLog(env.relayStore)).length, 'published')
      assert.equal(b.stats.published, 1, `B published ${event!.event_id}`)
      assert.equal(a.stats.published, 0, 'A published nothing')
    } finally {
      await within(Promise.all([a.stop(), b.stop()]), 15_000, 'relays stop')
    }
  })

  test('an active relay whose lease row names another live session stands by at its next checkpoint write, not only at its lease check', async () => {
    const nc = await env.natsAs('relay')
    // Lease checks once a minute: within this test only the fenced checkpoint write can tell the relay.
    const relay = new Relay({ sql: env.db.connect(ROLES.relay, 2), nc, name: 'fenced', pollIntervalMs: 60_000 })
    relay.start()
    try {
      await eventually(() => relay.state === 'active', 'active')
      await appendIntents(env.intents, 'acme', 1, 1, 'fenced-a')
      await eventually(() => relay.stats.published === 1, 'the first event published')
      // The lease moves to a live session of the test's (the relay's own session lives on).
      await env.db.admin`
        update eventplane.relay_leases set (holder_pid, holder_started) =
          (select pid, backend_start from pg_stat_activity where pid = pg_backend_pid())
         where name = 'fenced'`
      // The next drain's checkpoint write is refused; the drain after it finds that out.
      await appendIntents(env.intents, 'acme', 1, 1, 'fenced-b')
      await eventually(() => relay.stats.published === 2, 'the second event published')
      await appendIntents(env.intents, 'acme', 1, 1, 'fenced-c')
      await eventually(() => relay.state === 'standby', 'standing by', 15_000)
    } finally {
      await within(relay.stop(), 15_000, 'relay stops')
    }
  })
})
