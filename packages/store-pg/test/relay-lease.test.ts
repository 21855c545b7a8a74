import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { loadRelayCheckpoint } from '@eventplane/store-pg'
import { eventually } from '@eventplane/store-pg/testing'
import { useLeaseSuite } from './helpers.ts'

const at = (n: number) => ({ txId: BigInt(n), position: BigInt(n) })

describe('relay lease', () => {
  const suite = useLeaseSuite('ep_relay_lease')
  const { lease, holderPid } = suite

  test('while relay A holds the lease, relay B can neither take it nor write the checkpoint', async () => {
    const a = lease('fence')
    const b = lease('fence')
    assert.equal(await a.tryAcquire(), true)
    assert.equal(await a.storeCheckpoint(at(5), 'stream-1'), true)
    assert.equal(await b.storeCheckpoint(at(9), 'stream-1'), false, 'B never tried to take the lease')
    assert.equal(await b.tryAcquire(), false)
    assert.equal(await b.held(), false)
    assert.equal(await b.storeCheckpoint(at(9), 'stream-1'), false, 'B lost the race for the lease')
    assert.equal(await b.storeCheckpoint(at(9), 'stream-2', { reset: true }), false, 'not even a reset')
    assert.deepEqual(await loadRelayCheckpoint(suite.db.admin, 'fence'), at(5), "A's checkpoint stands")
    assert.equal(await a.held(), true)
  })

  test('no relay writes the first checkpoint of a name without its lease', async () => {
    const c = lease('unclaimed')
    assert.equal(await c.storeCheckpoint(at(3), 'stream-1'), false)
    assert.equal((await suite.db.admin`select 1 from eventplane.relay_checkpoints where name = 'unclaimed'`).length, 0)
  })

  test("a standby takes over once the holder's session ends, and the old holder is fenced off", async () => {
    const a = lease('takeover')
    const b = lease('takeover')
    assert.equal(await a.tryAcquire(), true)
    assert.equal(await b.tryAcquire(), false)
    const pid = await holderPid('takeover')
    await suite.db.admin`select pg_terminate_backend(${pid}::int)`
    await eventually(() => b.tryAcquire(), 10_000, 'the standby to take the lease')
    assert.notEqual(await holderPid('takeover'), pid)
    assert.equal(await a.held().catch(() => false), false, "A's session is gone (a new one is not the holder)")
    assert.equal(await a.storeCheckpoint(at(7), 'stream-1'), false)
    assert.equal(await b.storeCheckpoint(at(8), 'stream-1'), true)
    assert.deepEqual(await loadRelayCheckpoint(suite.db.admin, 'takeover'), at(8))
  })

  test('a released lease is taken at once; the checkpoint never moves back unless reset', async () => {
    const a = lease('handover')
    const b = lease('handover')
    assert.equal(await a.tryAcquire(), true)
    assert.equal(await a.storeCheckpoint(at(10), 'stream-1'), true)
    await a.release()
    assert.equal(await b.tryAcquire(), true)
    assert.equal(await b.storeCheckpoint(at(4), 'stream-1'), false, 'backwards is refused')
    assert.deepEqual(await loadRelayCheckpoint(suite.db.admin, 'handover'), at(10))
    assert.equal(await b.storeCheckpoint(at(4), 'stream-2', { reset: true }), true)
    assert.deepEqual(await loadRelayCheckpoint(suite.db.admin, 'handover'), at(4))
  })

  test("a checkpoint write commits without waiting for the WAL flush, so it never holds back the log's read", async () => {
    // An observer on the table records the commit mode each write's transaction runs with. While a synchronous
    // commit waits for its flush, its transaction id is still running and the gap-safe read stops before it.
    await suite.db.admin.unsafe(`
      create table public.checkpoint_commit_modes (mode text not null);
      create function public.record_commit_mode() returns trigger language plpgsql security definer as $$
      begin
        insert into public.checkpoint_commit_modes values (current_setting('synchronous_commit'));
        return null;
      end $$;
      create trigger record_commit_mode after insert or update on eventplane.relay_checkpoints
        for each row execute function public.record_commit_mode();`)
    try {
      const a = lease('async')
      assert.equal(await a.tryAcquire(), true)
      assert.equal(await a.storeCheckpoint(at(1), 'stream-1'), true)
      assert.equal(await a.storeCheckpoint(at(2), 'stream-1'), true)
      assert.equal(await a.storeCheckpoint(at(1), 'stream-2', { reset: true }), true)
      const modes = await suite.db.admin<{ mode: string }[]>`select mode from public.checkpoint_commit_modes`
      assert.deepEqual(
        modes.map((m) => m.mode),
        ['off', 'off', 'off'],
      )
      const [setting] = await suite.db.admin<{ mode: string }[]>`select current_setting('synchronous_commit') as mode`
      assert.equal(setting?.mode, 'on', 'other transactions keep their durable commits')
    } finally {
      await suite.db.admin.unsafe(`
        drop trigger record_commit_mode on eventplane.relay_checkpoints;
        drop function public.record_commit_mode();
        drop table public.checkpoint_commit_modes;`)
    }
  })
})
