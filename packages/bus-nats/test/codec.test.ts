import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { type RecordedEvent, EventFactory, isEventplaneError } from '@eventplane/core'
import type { MsgHdrsImpl } from '@nats-io/transport-node'
import { EVENT_HEADERS, decodeEvent, encodeEvent, eventHeaders, headerValue, readEventHeaders } from '../src/codec.ts'

function recorded(): RecordedEvent {
  const root = EventFactory.forTenant('acme', { causedBy: 'user:alice' }).intent(
    { category: 'deployment', id: 'd:1' },
    'deploy_requested',
    { replicas: 3, tags: ['a'], nested: { ok: true } },
  )
  const child = EventFactory.fromEvent(root, { causedBy: 'controller:deployer' }).fact(
    { category: 'deployment', id: 'd:1' },
    'deploy_started',
    { step: 1 },
  )
  return {
    ...child,
    stream_version: 7,
    global_position: 9_007_199_254_740_993n,
    tx_id: 18_446_744_073_709_551_615n,
    recorded_at: '2025-01-02T03:04:05.678Z',
  }
}

describe('codec', () => {
  test('an event survives encode and decode with every field, lineage and bigint positions exact', () => {
    const e = recorded()
    assert.deepEqual(decodeEvent(encodeEvent(e)), e)
    const wire = JSON.parse(new TextDecoder().decode(encodeEvent(e)))
    assert.equal(wire.global_position, '9007199254740993', 'positions travel as decimal strings, never floats')
    assert.equal(wire.tx_id, '18446744073709551615')
  })

  test('headers carry the event id as Nats-Msg-Id and the position, tx id and tenant', () => {
    const e = recorded()
    const h = eventHeaders(e)
    assert.equal(h.get(EVENT_HEADERS.msgId), e.event_id)
    assert.deepEqual(readEventHeaders(h), {
      eventId: e.event_id,
      txId: e.tx_id,
      position: e.global_position,
      tenant: 'acme',
    })
  })

  test('headers are read only as the relay writes them: canonical positions, a tenant, the first of repeated values', () => {
    const e = recorded()
    const headers = (changes: Record<string, string | string[] | undefined>): MsgHdrsImpl => {
      const h = eventHeaders(e) as MsgHdrsImpl
      for (const [name, value] of Object.entries(changes)) {
        h.headers.delete(name)
        if (value !== undefined) for (const v of [value].flat()) h.append(name, v)
      }
      return h
    }
    for (const [name, values] of [
      [EVENT_HEADERS.position, ['05', '+5', '-5', '0x5', '1'.repeat(21), '']],
      [EVENT_HEADERS.txId, ['007', '1e3', '5.0']],
      [EVENT_HEADERS.tenant, [undefined, '']],
      [EVENT_HEADERS.msgId, [undefined]],
    ] as const)
      for (const value of values)
        assert.equal(readEventHeaders(headers({ [name]: value })), undefined, `${name}: ${value}`)
    // A repeated header is read as nats.js `get` reads it: its first value.
    const repeated = headers({ [EVENT_HEADERS.position]: ['5', '6'], [EVENT_HEADERS.tenant]: ['acme', 'other'] })
    assert.deepEqual(readEventHeaders(repeated), { eventId: e.event_id, txId: e.tx_id, position: 5n, tenant: 'acme' })
    assert.equal(headerValue(repeated, EVENT_HEADERS.position), repeated.get(EVENT_HEADERS.position))
  })

  test('decode refuses anything that is not a complete recorded event', () => {
    const good = JSON.parse(new TextDecoder().decode(encodeEvent(recorded())))
    const bad: unknown[] = [
      'not json',
      [],
      { ...good, global_position: 12 },
      { ...good, tx_id: '1.5' },
      { ...good, stream_version: 0 },
      { ...good, recorded_at: 'yesterday' },
      { ...good, tenant_id: 'a.b' },
      { ...good, correlation_id: undefined },
      { ...good, extra: true },
    ]
    // Bytes that are not UTF-8 inside a string: refused, never read with replacement characters.
    const body = new TextDecoder().decode(encodeEvent(recorded()))
    const at = Buffer.byteLength(body.slice(0, body.indexOf('deploy_started') + 6))
    const notUtf8 = Buffer.concat([Buffer.from(body).subarray(0, at), Buffer.of(0xff), Buffer.from(body).subarray(at)])
    assert.throws(
      () => decodeEvent(notUtf8),
      (e: unknown) => isEventplaneError(e, 'core.invalid_envelope'),
    )
    for (const value of bad) {
      const bytes = new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value))
      assert.throws(
        () => decodeEvent(bytes),
        (e: unknown) => isEventplaneError(e),
        JSON.stringify(value).slice(0, 80),
      )
    }
  })

  test('a body of the complete shape still gets every content check (the shape-first path)', () => {
    const good = JSON.parse(new TextDecoder().decode(encodeEvent(recorded())))
    // Each has every field with the right JSON type, so only the checks after the shape can refuse it.
    const bad: Record<string, unknown>[] = [
      { ...good, data: { note: 'a\u0000b' } },
      { ...good, data: { note: '\ud800' } },
      { ...good, stream_version: 2 ** 53 },
      { ...good, stream_version: 1.5 },
      { ...good, causation_id: null },
      { ...good, causation_id: good.event_id },
      { ...good, occurred_at: '2024-02-30T00:00:00Z' },
      { ...good, stream: { category: 'deployment', id: 'a b' } },
      { ...good, type: 'Not A Type' },
    ]
    for (const value of bad) {
      const bytes = new TextEncoder().encode(JSON.stringify(value))
      assert.throws(
        () => decodeEvent(bytes),
        (e: unknown) => isEventplaneError(e),
        JSON.stringify(value).slice(0, 120),
      )
    }
  })

  test("positions are canonical decimals (no sign, no leading zero, at most 20 digits); a body without one of the store's columns is refused naming it", () => {
    const good = JSON.parse(new TextDecoder().decode(encodeEvent(recorded())))
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ ...good, global_position: '-1' }, 'global_position'],
      [{ ...good, global_position: '007' }, 'global_position'],
      [{ ...good, global_position: '1'.repeat(21) }, 'global_position'],
      [{ ...good, tx_id: '-5' }, 'tx_id'],
      [{ ...good, tx_id: '+5' }, 'tx_id'],
      [{ ...good, tx_id: '05' }, 'tx_id'],
    ]
    for (const column of ['stream_version', 'global_position', 'tx_id', 'recorded_at']) {
      const { [column]: _, ...without } = good
      bad.push([without, column])
    }
    for (const [value, column] of bad) {
      assert.throws(
        () => decodeEvent(new TextEncoder().encode(JSON.stringify(value))),
        (e: unknown) => isEventplaneError(e, 'core.invalid_envelope') && e.message.includes(`no valid ${column}`),
        `${column}: ${JSON.stringify(value[column])}`,
      )
    }
    assert.equal(decodeEvent(encodeEvent({ ...recorded(), global_position: 0n })).global_position, 0n)
  })
})
