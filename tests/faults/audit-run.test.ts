import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  type Checkpoint,
  type EventEnvelope,
  EventFactory,
  compareCheckpoints,
  isEventplaneError,
} from '@eventplane/core'
import { type SubmitResult, ensureConsumer, startGateway, submitIntent, subscribe } from '@eventplane/bus-nats'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import { eventually } from '../../packages/bus-nats/test/fixtures.ts'
import { assertAckedOnce, assertVersionsContiguous, logRows } from './support/checks.ts'
import { Ledger, RETRYABLE } from './support/clients.ts'
import { TENANTS, useFaultSystem } from './support/system.ts'

const WRITERS = 8
const STREAMS_PER_TENANT = 3
const RUN_MS = 5_000
/** A bound on attempts per writer, whatever the machine's speed. */
const MAX_ATTEMPTS = 5_000

describe('faults: an audit run of concurrent writers with optimistic concurrency', () => {
  const sys = useFaultSystem('ep_fault_audit')

  test(`${WRITERS} writers racing on expected versions for ${RUN_MS / 1000} s leave every acknowledged append stored once, versions 1..n, and a consumer that saw the whole log in order`, {
    timeout: 90_000,
  }, async (t) => {
    const { env } = sys
    const relay = await sys.startRelay({ name: 'main' })
    await eventually(() => relay.state === 'active', 'the relay to be active')
    const gateway = await startGateway({
      nc: await env.natsAs('gateway'),
      store: new PgEventStore(env.db.connect(ROLES.intentWriter, 8)),
      // The audit is about racing writers, as many as the gateway can take: no rate limit.
      limits: { perTenant: { ratePerSecond: Number.POSITIVE_INFINITY, bytesPerSecond: Number.POSITIVE_INFINITY } },
    })
    sys.defer(() => gateway.stop())

    // A consumer of the whole log, recording what it was handed in delivery order.
    const ctl = await env.natsAs('controller')
    await ensureConsumer(await jetstreamManager(ctl), { name: 'audit_all', filter: {} })
    const received: Array<{ id: string; at: Checkpoint }> = []
    let redelivered = 0
    const consumer = await subscribe(jetstream(ctl), { consumer: 'audit_all' })
    sys.defer(() => consumer.stop())
    void (async () => {
      for await (const d of consumer) {
        if (d.redelivered) redelivered++
        else received.push({ id: d.event.event_id, at: { txId: d.event.tx_id, position: d.event.global_position } })
        await d.ack().catch(() => {})
      }
    })().catch(() => {})

    const ledger = new Ledger()
    /** Each submitted event's expected version: an acknowledged one must sit right after it. */
    const expectedOf = new Map<string, number>()
    let rejected = 0
    const reader = new PgEventStore(env.db.connect(ROLES.intentWriter, 4))
    const end = Date.now() + RUN_MS
    const writer = async (index: number, nc: NatsConnection, tenant: string): Promise<void> => {
      const factory = EventFactory.forTenant(tenant, { causedBy: `user:writer-${index}` })
      for (let attempt = 0; attempt < MAX_ATTEMPTS && Date.now() < end; attempt++) {
        const stream = { tenant, category: 'account', id: `acct-${(index + attempt) % STREAMS_PER_TENANT}` }
        const [last] = await reader.readStreamToArray(stream, { direction: 'backward', maxCount: 1 })
        const version = last?.stream_version ?? 0
        const event = factory.intent(stream, 'credited', { writer: index, attempt, seen: version })
        expectedOf.set(event.event_id, version)
        try {
          await submitRetrying(nc, event, version === 0 ? 'no_stream' : version, ledger)
        } catch (e) {
          if (!isEventplaneError(e, 'store.wrong_expected_version')) throw e
          rejected++
        }
      }
    }
    const clients = await Promise.all(Array.from({ length: WRITERS }, (_, i) => sys.client(TENANTS[i % 2]!)))
    await Promise.all(clients.map((nc, i) => writer(i, nc, TENANTS[i % 2]!)))

    const rows = await logRows(sys.admin)
    assertAckedOnce(rows, ledger)
    // Optimistic concurrency: an append is acknowledged only at the version its writer expected, plus one; the
    // writers raced for the same streams, so some expectations were out of date and refused.
    for (const [id, ack] of ledger.acked)
      assert.equal(ack.stream_version, expectedOf.get(id)! + 1, `event ${id} is right after the version it expected`)
    assert.ok(rejected > 0, 'the writers raced: some expected versions were out of date and refused')
    assert.equal(rows.length, ledger.acked.size, 'PostgreSQL holds the acknowledged appends and nothing else')
    const streams = assertVersionsContiguous(rows)
    await eventually(() => received.length >= rows.length, `the consumer to receive all ${rows.length} events`, 30_000)
    assert.deepEqual(
      received.map((r) => r.id),
      rows.map((r) => r.event_id),
      'the consumer received every event once, in the log order',
    )
    for (let i = 1; i < received.length; i++) {
      assert.ok(
        compareCheckpoints(received[i - 1]!.at, received[i]!.at) < 0,
        `delivery ${i} follows delivery ${i - 1} in (tx_id, global_position)`,
      )
    }
    t.diagnostic(
      `acknowledged ${ledger.acked.size}, rejected by concurrency ${rejected}, in PostgreSQL ${rows.length} over ${streams} streams, ` +
        `received by the consumer ${received.length} (+${redelivered} redeliveries); other failed attempts: ${ledger.summary()}`,
    )
  })
})

/** Submits with an expected version; a lost reply is retried with the same event id and the same expectation. */
async function submitRetrying(
  nc: NatsConnection,
  event: EventEnvelope,
  expectedVersion: number | 'no_stream',
  ledger: Ledger,
): Promise<SubmitResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      const result = await submitIntent(nc, event, { expectedVersion, timeoutMs: 5000 })
      ledger.acked.set(event.event_id, result)
      return result
    } catch (e) {
      const code = isEventplaneError(e) ? e.code : 'unexpected'
      if (!RETRYABLE.has(code) || attempt >= 5) throw e
      ledger.note(code)
    }
  }
}
