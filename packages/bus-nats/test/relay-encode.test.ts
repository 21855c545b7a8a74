import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type RecordedEvent, EventFactory, START } from '@eventplane/core'
import { type EventTextRow, PgEventStore, ROLES } from '@eventplane/store-pg'
import { createTestDatabase, eventually, type TestDatabase } from '@eventplane/store-pg/testing'
import { decodeEvent, encodeEvent, eventHeaders } from '../src/codec.ts'
import {
  SpanKind,
  TRACEPARENT_HEADER,
  eventParentContext,
  startEventSpan,
  traceparentOf,
  tracerInstalled,
} from '../src/ops/trace-context.ts'
import { relayMessage } from '../src/relay-encode.ts'
import { logSubject } from '../src/subjects.ts'

describe('relay encoding of rows read as text', () => {
  let db: TestDatabase
  before(async () => {
    db = await createTestDatabase('ep_relay_encode')
  })
  after(() => db.drop())

  test('is the wire form of encodeEvent: same decoded event, headers and subject, for awkward data', async () => {
    const s = { tenant: 'acme', category: 'deployment', id: 'd:1' }
    const root = EventFactory.forTenant('acme', { causedBy: 'user:"quoted"\\back' }).intent(s, 'created', {
      text: 'line\nbreak "quotes" \\ tab\t \u2028 emoji \u{1F600} nul-free',
      numbers: [0, -1.5, 1e21, 9007199254740991, 0.1],
      nested: { empty: {}, list: [], nil: null, yes: true },
      '': 'empty key',
    })
    const child = EventFactory.fromEvent(root, { causedBy: 'controller:deployer' }).fact(s, 'started', { step: 1 })
    await new PgEventStore(db.connect(ROLES.operator, 1)).append(s, [root, child])

    const relay = new PgEventStore(db.connect(ROLES.relay, 2))
    let recorded: RecordedEvent[] = []
    let rows: EventTextRow[] = []
    // The gap-safe read holds the rows back while any older transaction in the cluster is open.
    await eventually(async () => {
      recorded = []
      rows = []
      for await (const batch of relay.readAll({ from: START })) recorded.push(...batch)
      for await (const batch of relay.readAllText({ from: START })) rows.push(...batch)
      return recorded.length === 2 && rows.length === 2
    })
    for (const [i, row] of rows.entries()) {
      const e = recorded[i]!
      const m = relayMessage(row)
      assert.deepEqual(decodeEvent(m.bytes), decodeEvent(encodeEvent(e)), 'the same event on the wire')
      assert.deepEqual(decodeEvent(m.bytes), e)
      // Besides the log headers, the traceparent a publish span would carry with no SDK registered (the
      // relay then starts no span at all): the event's own span context.
      assert.equal(tracerInstalled(), false, 'no SDK in this test process')
      const span = startEventSpan('eventplane publish', SpanKind.PRODUCER, e, eventParentContext(e, undefined))
      assert.deepEqual(
        [...m.headers.keys()].map((k) => [k, m.headers.get(k)]),
        [
          ...[...eventHeaders(e).keys()].map((k) => [k, eventHeaders(e).get(k)]),
          [TRACEPARENT_HEADER, traceparentOf(span)],
        ],
      )
      assert.equal(m.subject, logSubject(e.kind, e.tenant_id, e.stream.category, e.stream.id))
      assert.deepEqual([m.event.event_id, m.txId, m.position], [e.event_id, e.tx_id, e.global_position])
    }
  })
})
