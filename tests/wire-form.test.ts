/**
 * Core owns one wire form of a recorded event (issue 12): the relay's NATS
 * body, an NDJSON export line and evtctl's `--json` are the same object for
 * the same event, and the form round-trips to the recorded event.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import fc from 'fast-check'
import { EventFactory, type RecordedEvent, fromWire, toWire } from '@eventplane/core'
import { Relay, STREAM_NAME, decodeEvent } from '@eventplane/bus-nats'
import { PgEventStore, ROLES, exportEvents } from '@eventplane/store-pg'
import { jetstream } from '@nats-io/jetstream'
import { type BusEnv, createBusEnv, eventually, streamCount, within } from '../packages/bus-nats/test/fixtures.ts'
import { jetstreamManager } from '@nats-io/jetstream'
import { killAll, runCli } from '../packages/evtctl/test/helpers.ts'

const MAX_I64 = (1n << 63n) - 1n

const recordedEvent = fc
  .record({
    data: fc.dictionary(
      fc.string({ maxLength: 8 }),
      fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null)),
    ),
    version: fc.integer({ min: 1, max: 2 ** 31 }),
    position: fc.bigInt({ min: 1n, max: MAX_I64 }),
    txId: fc.bigInt({ min: 3n, max: MAX_I64 }),
    child: fc.boolean(),
  })
  .map(({ data, version, position, txId, child }): RecordedEvent => {
    const root = EventFactory.forTenant('acme', { causedBy: 'user:alice' })
    const parent = root.intent({ category: 'deployment', id: 'web-1' }, 'create', {})
    const factory = child ? root.causedBy(parent, { causedBy: 'controller:deployments' }) : root
    const e = factory.fact({ category: 'deployment', id: 'web-1' }, 'scaled', { ...data })
    return { ...e, stream_version: version, global_position: position, tx_id: txId, recorded_at: e.occurred_at }
  })

describe('one wire form of a recorded event', () => {
  test('toWire then JSON then fromWire gives the recorded event back, positions beyond 2^53 included', () => {
    fc.assert(
      fc.property(recordedEvent, (e) => {
        const wire = JSON.parse(JSON.stringify(toWire(e)))
        assert.equal(typeof wire.global_position, 'string')
        assert.deepEqual(wire.stream, e.stream)
        assert.deepEqual(fromWire(wire), e)
      }),
      { numRuns: 200 },
    )
  })

  describe('the relay body, an export line and evtctl read --json are the same object', () => {
    let env: BusEnv
    let relay: Relay
    let stored: RecordedEvent[]

    before(async () => {
      env = await createBusEnv('ep_wire')
      const stream = { tenant: 'acme', category: 'deployment', id: 'web-1' }
      const alice = EventFactory.forTenant('acme', { causedBy: 'user:alice' })
      const intent = alice.intent(stream, 'create', { image: 'nginx', replicas: 2, big: 2 ** 53 - 1 })
      await env.intents.append(stream, [intent])
      const ctl = EventFactory.fromEvent(intent, { causedBy: 'controller:deployments' })
      await env.facts.append(stream, [ctl.fact(stream, 'created', { nested: { list: [1, 'two', null] } })])
      stored = await new PgEventStore(env.db.connect(ROLES.reader, 1)).readStreamToArray(stream)
      relay = new Relay({ sql: env.db.connect(ROLES.relay, 2), nc: await env.natsAs('relay'), name: 'wire' })
      relay.start()
      const jsm = await jetstreamManager(await env.natsAs('operator'))
      await eventually(async () => (await streamCount(jsm)) === stored.length, 'the relay published both events')
    })
    after(async () => {
      killAll()
      await within(relay?.stop() ?? Promise.resolve(), 15_000, 'relay stop').catch(() => {})
      await env?.cleanup()
    })

    test('every field, in the same form, on all three paths; each decodes to the stored event', async () => {
      assert.equal(stored.length, 2)
      const consumer = await jetstream(await env.natsAs('operator')).consumers.get(STREAM_NAME)
      const bodies: unknown[] = []
      const batch = await consumer.fetch({ max_messages: stored.length, expires: 5000 })
      for await (const m of batch) {
        bodies.push(JSON.parse(new TextDecoder().decode(m.data)))
        assert.deepEqual(decodeEvent(m.data), stored[bodies.length - 1])
      }

      const exported: unknown[] = []
      const operator = new PgEventStore(env.db.connect(ROLES.operator, 1))
      for await (const line of exportEvents(operator, { tenant: 'acme', includeActor: true })) {
        // The line is the wire form plus the hash chain's `hash`, a field of its own (issue 17).
        const { hash, ...wire } = JSON.parse(line) as { hash: unknown }
        assert.match(String(hash), /^[0-9a-f]{64}$/)
        exported.push(wire)
      }

      const read = await runCli(['read', 'acme/deployment/web-1', '--json', '--show-actor'], {
        env: { EVENTPLANE_DATABASE_URL: env.db.url },
      })
      assert.equal(read.code, 0, read.stderr)
      const printed = read.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as unknown)

      const expected = stored.map((e) => JSON.parse(JSON.stringify(toWire(e))) as unknown)
      assert.deepEqual(bodies, expected, 'relay body')
      assert.deepEqual(exported, expected, 'export line')
      assert.deepEqual(printed, expected, 'evtctl read --json')
      for (const wire of expected) {
        const w = wire as Record<string, unknown>
        assert.deepEqual(Object.keys(w).sort(), [
          'causation_id',
          'caused_by',
          'correlation_id',
          'data',
          'event_id',
          'global_position',
          'kind',
          'occurred_at',
          'recorded_at',
          'schema_version',
          'stream',
          'stream_version',
          'tenant_id',
          'tx_id',
          'type',
        ])
        assert.equal(typeof w.global_position, 'string')
        assert.equal(typeof w.tx_id, 'string')
        assert.deepEqual(Object.keys(w.stream as object), ['category', 'id'])
      }
      assert.deepEqual(
        stored.map((e) => fromWire(toWire(e))),
        stored,
      )
    })
  })
})
