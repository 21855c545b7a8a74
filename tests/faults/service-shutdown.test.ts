import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { EventFactory, isEventplaneError } from '@eventplane/core'
import { GATEWAY_APPLICATION_NAME, type SubmitResult, submitIntent, tenantInboxPrefix } from '@eventplane/bus-nats'
import { startNatsServer, type TestNatsServer } from '@eventplane/bus-nats/testing'
import { ROLES } from '@eventplane/store-pg'
import { type HeldStream, createTestDatabase, holdStream, type TestDatabase } from '@eventplane/store-pg/testing'
import type { NatsConnection } from '@nats-io/transport-node'
import { type ServiceProcess, eventually, within } from '../../packages/bus-nats/test/fixtures.ts'
import { FAULT_DOMAIN, spawnEvtctl } from './support/children.ts'
import { startReplyGate } from './support/reply-gate.ts'

const acme = EventFactory.forTenant('acme', { causedBy: 'user:shutdown' })

/** Resolves with the exit code once `service` exited (SIGKILLed and failed after 20 s). */
async function exitCode(service: ServiceProcess, what: string): Promise<number | null> {
  const child = service.process
  if (child.exitCode === null && child.signalCode === null)
    await within(new Promise((resolve) => child.once('exit', resolve)), 20_000, `${what} to exit`).catch(
      async (e: unknown) => {
        await service.kill()
        throw e
      },
    )
  return child.exitCode
}

/**
 * What a service does with work it holds when SIGTERM comes: the shutdown order of `evtctl up`'s parts
 * and the drain of a service's NATS connection, each seen from outside the process.
 */
describe('faults: a service stopped by SIGTERM while it holds a request', () => {
  let db: TestDatabase
  let nats: TestNatsServer
  let client: NatsConnection
  const services: ServiceProcess[] = []
  const locks: HeldStream[] = []

  before(async () => {
    db = await createTestDatabase('ep_fault_shutdown')
    nats = await startNatsServer({ withAuth: false })
    client = await nats.connect(undefined, { inboxPrefix: tenantInboxPrefix('acme') })
  })
  after(async () => {
    await Promise.allSettled(locks.map((l) => l.release()))
    await Promise.allSettled(services.map((s) => s.kill()))
    await nats?.stop()
    await db?.drop()
  })

  const spawn = (args: string[], env: Record<string, string>): ServiceProcess => {
    const service = spawnEvtctl(args, `evtctl ${args[0]}`, { EVENTPLANE_DOMAIN: FAULT_DOMAIN, ...env })
    services.push(service)
    return service
  }

  /**
   * An intent submitted to stream `id` whose append waits, inside the gateway, for a lock the test holds
   * (holdStream: the stream's next version inserted in an open transaction): resolves once it waits.
   */
  const heldSubmit = async (id: string): Promise<{ reply: Promise<SubmitResult>; release: () => Promise<void> }> => {
    const stream = { tenant: 'acme', category: 'deployment', id }
    const lock = await holdStream(db.admin, stream)
    locks.push(lock)
    const reply = submitIntent(client, acme.intent(stream, 'scaled', { held: true }), { timeoutMs: 30_000 })
    reply.catch(() => {})
    await eventually(async () => {
      const waiting = await db.admin`select 1 from pg_stat_activity where datname = ${db.name}
        and application_name = ${GATEWAY_APPLICATION_NAME} and ${lock.pid}::int = any(pg_blocking_pids(pid))`
      return waiting.length > 0
    }, "the gateway's append to wait for the held stream")
    return { reply, release: () => lock.release() }
  }

  test('evtctl up stops taking intents before it stops its relay: the relay runs while the gateway answers what it holds', async (t) => {
    const up = spawn(['up'], { EVENTPLANE_DATABASE_URL: db.url, EVENTPLANE_NATS_URL: nats.url })
    await up.waitForLog('serving', 60_000)
    const held = await heldSubmit('held-up')
    up.process.kill('SIGTERM')
    await up.waitForLog('shutting down')

    // Submit until nobody takes intents any more: the gateway's subscription is gone.
    let answered = 0
    for (let n = 0; ; n++) {
      try {
        await submitIntent(client, acme.intent({ category: 'deployment', id: `probe-${n}` }, 'scaled', {}))
        answered++
      } catch (e) {
        if (!isEventplaneError(e, 'bus.unavailable') || !/^nobody answers/.test((e as Error).message)) throw e
        break
      }
      await sleep(10)
    }
    // The relay's stop comes after the gateway's, which waits for the held intent: its lease is still held.
    const [lease] = await db.admin<{ alive: boolean }[]>`
      select eventplane.backend_alive(holder_pid, holder_started) as alive
        from eventplane.relay_leases where name = 'default'`
    assert.equal(
      lease?.alive,
      true,
      `the relay was stopped before the gateway stopped taking intents (${answered} answered after SIGTERM)`,
    )
    assert.ok(!up.hasLogged('relay stopped'), 'no relay stopped line yet')
    t.diagnostic(`${answered} probe(s) answered after SIGTERM before nobody answered`)

    await held.release()
    const ok = await held.reply
    assert.match(ok.position, /^\d+$/, 'the intent held at SIGTERM is answered')
    assert.equal(await exitCode(up, 'evtctl up'), 0)
  })

  test('evtctl gateway drains its connection at SIGTERM: a reply still on its way is not lost', async () => {
    const gate = await startReplyGate(nats.port)
    try {
      const gateway = spawn(['gateway'], {
        EVENTPLANE_DATABASE_URL: db.roleUrl(ROLES.intentWriter),
        EVENTPLANE_NATS_URL: gate.url,
      })
      await gateway.waitForLog('gateway serving')
      const held = await heldSubmit('held-gateway')
      gateway.process.kill('SIGTERM')
      await gateway.waitForLog('shutting down')
      // The reply to the held intent, sent once its append commits, is held by the link until the gateway
      // waits for the server to have it; a gateway that just closes its connection loses it.
      gate.arm()
      await held.release()
      assert.equal(
        await within(gate.outcome, 20_000, 'the gateway to send its reply'),
        'delivered',
        'the gateway closed its connection with its reply unsent',
      )
      const ok = await held.reply
      assert.match(ok.position, /^\d+$/, 'the intent held at SIGTERM is answered')
      assert.equal(await exitCode(gateway, 'evtctl gateway'), 0)
    } finally {
      await gate.close()
    }
  })
})
