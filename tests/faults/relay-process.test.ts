import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { ROLES, loadRelayCheckpoint } from '@eventplane/store-pg'
import { jetstreamManager } from '@nats-io/jetstream'
import { Relay } from '@eventplane/bus-nats'
import {
  type BusEnv,
  appendIntents,
  createBusEnv,
  eventually,
  pgLog,
  streamCount,
  streamMessages,
  within,
} from '../../packages/bus-nats/test/fixtures.ts'
import { type ServiceChild as RelayChild, spawnRelay } from './support/children.ts'

/** Every event of the PG log is in the stream exactly once, in the same order. */
async function assertPublishedOnce(env: BusEnv, expected: number): Promise<void> {
  const operator = await env.natsAs('operator')
  const jsm = await jetstreamManager(operator)
  await eventually(async () => (await streamCount(jsm)) >= expected, `${expected} messages in the stream`, 30_000)
  const messages = await streamMessages(operator)
  const ids = messages.map((m) => m.event.event_id)
  assert.equal(ids.length, expected, 'stream message count equals the number of events')
  assert.equal(new Set(ids).size, expected, 'no event is in the stream twice')
  assert.deepEqual(
    ids,
    (await pgLog(env.relayStore)).map((e) => e.event_id),
    'the stream order is the gap-safe PG order',
  )
}

describe('relay faults: evtctl relay processes killed, doubled, cut off', () => {
  const envs: BusEnv[] = []
  const relays: RelayChild[] = []
  const inProcess: Relay[] = []
  const newEnv = async (prefix: string): Promise<BusEnv> => {
    const env = await createBusEnv(prefix)
    envs.push(env)
    return env
  }
  const spawn = (env: BusEnv, name: string, extra?: Record<string, string>): RelayChild => {
    const child = spawnRelay(env, name, extra)
    relays.push(child)
    return child
  }
  after(async () => {
    await Promise.allSettled(relays.map((r) => r.kill()))
    await Promise.allSettled(inProcess.map((r) => within(r.stop(), 10_000, 'relay stop')))
    await Promise.allSettled(envs.map((e) => e.cleanup()))
  })

  test('a relay killed with SIGKILL while draining 2,000 events and restarted publishes every event, none twice', async () => {
    const env = await newEnv('ep_relay_kill')
    const jsm = await jetstreamManager(await env.natsAs('operator'))
    const small = { EVENTPLANE_RELAY_BATCH_SIZE: '50', EVENTPLANE_RELAY_MAX_IN_FLIGHT: '16' }
    const first = spawn(env, 'kill', small)
    await first.waitForLog('relay active')
    const appending = appendIntents(env.intents, 'acme', 2000, 50)
    await eventually(async () => (await streamCount(jsm)) >= 300, 'the relay to be mid-stream')
    await first.kill('SIGKILL')
    const atKill = await streamCount(jsm)
    const appended = await within(appending, 30_000, 'appends')
    assert.ok(atKill < 2000, `killed mid-stream (${atKill} of 2000 published)`)
    const checkpoint = await loadRelayCheckpoint(env.relayStore.sql, 'kill')
    let log = await pgLog(env.relayStore)
    await eventually(
      async () => (log = await pgLog(env.relayStore)).length === appended.length,
      'every appended event to be visible',
    )
    assert.ok(
      checkpoint.position < log.at(-1)!.global_position || checkpoint.txId < log.at(-1)!.tx_id,
      'the checkpoint stopped short of the end',
    )

    spawn(env, 'kill', small)
    await assertPublishedOnce(env, 2000)
  })

  test('of two relays with one name only one publishes; when it is killed the other takes over and finishes', async () => {
    const env = await newEnv('ep_relay_pair')
    const jsm = await jetstreamManager(await env.natsAs('operator'))
    const a = spawn(env, 'pair', { EVENTPLANE_RELAY_BATCH_SIZE: '25' })
    await a.waitForLog('relay active')
    const b = spawn(env, 'pair', { EVENTPLANE_RELAY_BATCH_SIZE: '25' })
    await b.waitForLog('another relay is active; standing by')
    await appendIntents(env.intents, 'globex', 600, 50)
    await eventually(async () => (await streamCount(jsm)) >= 100, 'the active relay to publish')
    assert.ok(!b.hasLogged('relay active'), 'the standby never became active while the first lived')
    await a.kill('SIGKILL')
    await b.waitForLog('relay active')
    await appendIntents(env.intents, 'globex', 100, 50, 'late')
    await assertPublishedOnce(env, 700)
    await b.kill('SIGTERM')
    assert.equal(b.process.exitCode, 0, 'SIGTERM stops a relay gracefully')
    const last = (await pgLog(env.relayStore)).at(-1)!
    assert.deepEqual(await loadRelayCheckpoint(env.relayStore.sql, 'pair'), {
      txId: last.tx_id,
      position: last.global_position,
    })
  })

  test('while NATS is down appends still succeed, and after a restart on the same port and store the relay catches up', async () => {
    const env = await newEnv('ep_relay_natsdown')
    const relay = new Relay({
      sql: env.db.connect(ROLES.relay, 4),
      nc: await env.natsAs('relay'),
      name: 'nd',
      pollIntervalMs: 200,
      publishTimeoutMs: 500,
      maxBackoffMs: 300,
    })
    inProcess.push(relay)
    relay.start()
    await appendIntents(env.intents, 'acme', 40, 20, 'before')
    await assertPublishedOnce(env, 40)

    await env.server.kill()
    await appendIntents(env.intents, 'acme', 200, 20, 'during')
    await eventually(() => relay.state === 'retrying', 'the relay to notice NATS is down')
    const stuck = relay.checkpoint!
    assert.equal(
      stuck.position,
      (await pgLog(env.relayStore))[39]!.global_position,
      'the checkpoint does not move past an un-acked event',
    )

    await env.server.restart()
    await assertPublishedOnce(env, 240)
  })

  test('a relay whose PostgreSQL sessions are terminated retakes its lock and keeps publishing', async () => {
    const env = await newEnv('ep_relay_pgdrop')
    const relay = new Relay({
      sql: env.db.connect(ROLES.relay, 4),
      nc: await env.natsAs('relay'),
      name: 'pg',
      pollIntervalMs: 200,
      maxBackoffMs: 300,
    })
    inProcess.push(relay)
    relay.start()
    await appendIntents(env.intents, 'globex', 30, 10, 'before')
    await assertPublishedOnce(env, 30)
    const [killed] = await env.db.admin<{ n: number }[]>`
      select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
       where usename = ${ROLES.relay} and datname = ${env.db.name}`
    assert.ok(killed!.n >= 1, 'the relay had sessions to terminate')
    await appendIntents(env.intents, 'globex', 30, 10, 'after')
    await assertPublishedOnce(env, 60)
    await eventually(() => relay.state === 'active', 'the relay to be active again')
  })
})
